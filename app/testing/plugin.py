"""pytest plugin of b24emu (entry point `pytest11`): a real emulator for every test that asks.

Fixtures:

- `b24emu` (function scope): a fresh emulator for this test, served in-process by a real WSGI
  server on 127.0.0.1:<free port>, on a temporary SQLite file, with the default portal (or the
  fixture you name). Rate limit off unless asked. Yields a `RunningEmulator`: `.url`,
  `.webhook_url`, `.oauth_token`, `.client` (EmulatorClient) and shortcuts
  `.notifications()`, `.reset()`, `.fault()`, `.stub()`, `.freeze_clock()`, `.advance_clock()`,
  `.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}})`, `.deliveries()`...
- `b24emu_shared` (function scope, backed by one session-wide emulator): faster for large suites;
  before each test it is reset (`reset("all")`, faults cleared, clock back to real time). Marker
  options do not apply to it; the ini options do.

Configure per test with `@pytest.mark.b24emu(rate_limit="standard", clock="frozen",
fixtures="path/portal.json", **settings)` or for the whole suite with the ini options
`b24emu_rate_limit`, `b24emu_fixtures` and `b24emu_clock`.

This module is loaded by pytest in every project that installs b24emu, so it imports nothing
but pytest at import time; the emulator is imported when a test first uses a fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

MARKER = "b24emu"
INI_DEFAULTS = {"b24emu_rate_limit": "off", "b24emu_fixtures": "", "b24emu_clock": ""}


def pytest_addoption(parser) -> None:
    """ini options shared by every test of the suite."""
    parser.addini("b24emu_rate_limit", "b24emu request-rate preset: off (default), standard, "
                  "enterprise", default=INI_DEFAULTS["b24emu_rate_limit"])
    parser.addini("b24emu_fixtures", "b24emu portal fixture (path relative to the rootdir); "
                  "default: the packaged default portal", default="")
    parser.addini("b24emu_clock", "b24emu clock at start: empty (real time), 'frozen', or an "
                  "instant (unix seconds or ISO 8601) to freeze at", default="")


def pytest_configure(config) -> None:
    """Declare the marker."""
    config.addinivalue_line(
        "markers",
        "b24emu(rate_limit=..., clock=..., fixtures=..., **settings): configure the b24emu "
        "fixture for this test (settings: any B24EMU_* setting in lower case, e.g. "
        "timezone='Europe/Berlin', operating_costs='im.notify.personal.add=60')")


def _ini_options(config) -> dict:
    """The suite-wide options from the ini file."""
    options: dict = {"rate_limit": config.getini("b24emu_rate_limit") or "off"}
    fixtures = config.getini("b24emu_fixtures")
    if fixtures:
        path = Path(fixtures)
        options["fixtures"] = path if path.is_absolute() else Path(config.rootpath) / path
    clock = config.getini("b24emu_clock")
    if clock:
        options["clock"] = clock
    return options


def _options(request) -> dict:
    """ini options overridden by the closest `b24emu` marker."""
    options = _ini_options(request.config)
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.b24emu takes keyword arguments only")
        options.update(marker.kwargs)
    return options


def _start(db: Path, options: dict):
    from b24emu.testing.server import RunningEmulator

    try:
        return RunningEmulator.start(db=db, **options)
    except TypeError as error:  # an unknown keyword in the marker
        raise pytest.UsageError(f"@pytest.mark.b24emu: {error}") from None


@pytest.fixture
def b24emu(request, tmp_path):
    """A fresh in-process emulator for this test (see the module docstring)."""
    running = _start(tmp_path / "b24emu.sqlite3", _options(request))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def _b24emu_session(request, tmp_path_factory):
    running = _start(tmp_path_factory.mktemp("b24emu") / "b24emu.sqlite3",
                     _ini_options(request.config))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def b24emu_shared(_b24emu_session):
    """The session's emulator, reset before this test: a clean portal, no faults, real time
    (or the ini option's clock)."""
    _b24emu_session.restore()
    return _b24emu_session


__all__ = ["b24emu", "b24emu_shared"]
