"""Tests of shadow.events."""
