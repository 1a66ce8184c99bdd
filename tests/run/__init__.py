"""Tests of shadow.run."""
