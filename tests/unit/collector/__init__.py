"""Collector unit tests."""
