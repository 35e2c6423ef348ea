"""Simulated venue unit tests."""
