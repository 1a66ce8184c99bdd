"""Tests of shadow.replay."""
