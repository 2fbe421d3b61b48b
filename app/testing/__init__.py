"""Helpers for test suites: the pytest plugin (entry point pytest11)."""
