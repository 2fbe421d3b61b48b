"""Start-up checks of `b24emu serve`: every setting is usable before anything is printed or created.

`serve_settings()` reads the settings (flags over B24EMU_* variables) and checks them; a bad one
raises `ConfigError` with one line naming the flag, the variable and the value, e.g.
``--port / B24EMU_PORT: port 8080 on 127.0.0.1 is already in use``. Nothing is written: the
database path and the port are probed without creating the file or keeping the socket.
"""

from __future__ import annotations

import errno
import math
import socket
import tempfile
from pathlib import Path
from typing import Any

from b24emu.settings import ConfigError, Settings, setting_label

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def serve_settings(**overrides: Any) -> Settings:
    """The settings of `b24emu serve` (flags in `overrides`), checked; ConfigError when bad."""
    settings = Settings.from_env(**overrides)
    check(settings)
    return settings


MIN_WAL_LIMIT = 1024 * 1024  # a smaller bound would checkpoint on nearly every write
MIN_HEADER_TIMEOUT = 0.001  # granian counts it in whole milliseconds


def check(settings: Settings) -> None:
    """Raise ConfigError for the first setting that cannot work."""
    from b24emu.context import fixture_path, portal_zone
    from b24emu.store.limits import parse_costs, rate_limit_for

    if not 1 <= settings.port <= 65535:
        _bad("port", settings.port, "must be between 1 and 65535")
    for name in ("workers", "threads"):
        if getattr(settings, name) < 1:
            _bad(name, getattr(settings, name), "must be at least 1")
    if settings.log_level.upper() not in LOG_LEVELS:
        _bad("log_level", settings.log_level, f"must be one of {', '.join(LOG_LEVELS)}")
    for name in ("rate_capacity", "rate_drain"):
        value = getattr(settings, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            _bad(name, value, "must be a positive number")
    timeout = settings.header_timeout
    if not (math.isfinite(timeout) and timeout >= MIN_HEADER_TIMEOUT):
        _bad("header_timeout", timeout, f"must be a number of seconds of at least"
             f" {MIN_HEADER_TIMEOUT:g}")
    if not (math.isfinite(settings.operating_limit) and settings.operating_limit >= 0):
        _bad("operating_limit", settings.operating_limit, "must be 0 (off) or a positive number"
             " of seconds")
    if settings.attach_max_bytes < 1:
        _bad("attach_max_bytes", settings.attach_max_bytes, "must be at least 1")
    if settings.wal_limit_bytes < MIN_WAL_LIMIT:
        _bad("wal_limit_bytes", settings.wal_limit_bytes, f"must be at least {MIN_WAL_LIMIT}")
    if settings.max_body_bytes < 1:
        _bad("max_body_bytes", settings.max_body_bytes, "must be at least 1")
    if settings.journal_max < 0:
        _bad("journal_max", settings.journal_max, "must be 0 (no journal) or more")
    if settings.tls not in (0, 1):
        _bad("tls", settings.tls, "must be yes or no")
    try:
        rate_limit_for(settings.rate_limit, settings.rate_capacity, settings.rate_drain)
    except ValueError as error:
        raise ConfigError(f"{setting_label('rate_limit')}: {error}") from None
    try:
        parse_costs(settings.operating_costs)
    except ValueError as error:
        raise ConfigError(f"{setting_label('operating_costs')}: {error}") from None
    portal_zone(settings.timezone)
    if settings.fixtures and not fixture_path(settings.fixtures).is_file():
        _bad("fixtures", settings.fixtures, "no such file")
    _check_database(settings.db)
    if settings.tls:
        _check_folder(Path(settings.tls_dir).expanduser().absolute(), "tls_dir",
                      f"the certificate folder {settings.tls_dir!r}")
    _check_listen(settings.host, settings.port)


def _bad(name: str, value: Any, problem: str) -> None:
    shown = f"{value:g}" if isinstance(value, float) else repr(value)
    raise ConfigError(f"{setting_label(name)} {problem}, got {shown}")


def _check_database(path: str) -> None:
    """The file (if it exists) and its folder can be written; nothing is created."""
    target = Path(path).expanduser().absolute()
    where = setting_label("db")
    if target.is_dir():
        raise ConfigError(f"{where}: {path!r} is a directory, not a database file")
    if target.exists():
        try:
            with open(target, "r+b"):
                pass
        except OSError as error:
            raise ConfigError(f"{where}: cannot write the database {path!r} "
                              f"({error.strerror or error})") from None
    # SQLite writes its -wal and -shm files next to the database.
    _check_folder(target.parent, "db", f"the database {path!r}")


def _check_folder(folder: Path, name: str, what: str) -> None:
    """Files can be created in `folder`, or in the folder that will hold it once created."""
    while not folder.exists():  # the missing folders are created on start
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{setting_label(name)}: cannot create {what} ({folder} is not a "
                          "directory)")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"{setting_label(name)}: cannot write {what} in {folder} "
                          f"({error.strerror or error})") from None


def _check_listen(host: str, port: int) -> None:
    """The address resolves and the port is free (probed and released at once)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise ConfigError(f"{setting_label('host')}: cannot listen on {host!r} "
                          f"({error.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(f"{setting_label('port')}: port {port} on {host} is already "
                                  "in use (stop what listens there or choose another port)"
                                  ) from None
            raise ConfigError(f"{setting_label('host')}: cannot listen on {host}:{port} "
                              f"({error.strerror or error})") from None

