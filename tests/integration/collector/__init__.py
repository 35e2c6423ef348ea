"""Collector integration tests."""
