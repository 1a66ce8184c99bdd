"""Tests of shadow.sources."""
