"""Placeholder: filled in by the method work of issue 4."""
