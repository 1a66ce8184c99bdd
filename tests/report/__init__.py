"""Tests of shadow.report."""
