"""Helpers for test suites and scripts (kept import-light: the pytest plugin loads this package).

- `b24emu.testing.plugin`: the pytest plugin (entry point `pytest11`), fixtures `b24emu` and
  `b24emu_shared`.
- `b24emu.testing.server.RunningEmulator`: an emulator served in-process on a free port.
- `b24emu.testing.client.EmulatorClient`: a client of the control API (`/_emulator/`).
"""
