"""shadow: replay traffic to a legacy service and its rewrite, and report where they differ."""

__version__ = "0.1.0"
