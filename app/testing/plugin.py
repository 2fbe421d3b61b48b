"""pytest plugin: an in-process b24emu per test (placeholder until issue 5 lands)."""
