"""Tests of shadow.servers."""
