"""Helpers for test suites and scripts (kept import-light: the pytest plugin loads this package).

- `app.testing.plugin`: the pytest plugin (entry point `pytest11`), fixtures `b24emu` and
  `b24emu_shared`.
- `app.testing.server.RunningEmulator`: an emulator served in-process on a free port.
- `app.testing.client.EmulatorClient`: a client of the control API (`/_emulator/`).
"""
