"""Helpers shared by carnet's test suites."""
