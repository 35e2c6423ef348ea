"""Simulated venue process tests."""
