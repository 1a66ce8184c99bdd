"""Tests of shadow.compare."""
