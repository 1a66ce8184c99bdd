"""Tests of shadow.config."""
