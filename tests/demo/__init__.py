"""Tests of shadow.demo."""
