"""Every setting of the emulator, read once from the environment (prefix ``B24EMU_``).

| variable | default | meaning |
|---|---|---|
| B24EMU_HOST | 127.0.0.1 | address `b24emu serve` listens on |
| B24EMU_PORT | 8080 | port `b24emu serve` listens on |
| B24EMU_DB | b24emu.sqlite3 | SQLite database file (created on first start) |
| B24EMU_FIXTURES | fixtures/default.json | portal loaded into an empty database ("" for none) |
| B24EMU_WORKERS | 2 | server worker processes |
| B24EMU_THREADS | 4 | threads per worker for calls that may wait (quick calls use none) |
| B24EMU_PIN_WORKERS | yes | each server worker pinned to one CPU, spread out (Linux); no: none |
| B24EMU_TIMEZONE | UTC | the portal's time zone (offset of `date_start`, `server.time`) |
| B24EMU_ATTACH_MAX_BYTES | 30720 | largest normalized ATTACH that passes (cloud today: 59999) |
| B24EMU_MAX_BODY_BYTES | 8388608 | largest request body; larger is refused with 413 |
| B24EMU_LOG_LEVEL | INFO | log level of the emulator's own logger |
| B24EMU_RATE_LIMIT | standard | rate preset: standard (50, 2/s), enterprise (250, 5/s), off |
| B24EMU_RATE_CAPACITY | (preset) | bucket capacity: requests admitted in a burst |
| B24EMU_RATE_DRAIN | (preset) | requests per second the bucket drains |
| B24EMU_TLS | no | yes (or 1, true, on): serve HTTPS with a local CA (see B24EMU_TLS_DIR) |
| B24EMU_TLS_DIR | .b24emu-tls | where the CA and server certificate are generated and kept |
| B24EMU_TLS_NAMES | "" | extra host names for the certificate, comma-separated |
| B24EMU_OPERATING_LIMIT | 480 | seconds of run time per method per 10 minutes; 0: off |
| B24EMU_OPERATING_COSTS | "" | simulated run time per call, e.g. `im.notify.personal.add=60` |
| B24EMU_JOURNAL_MAX | 10000 | REST calls kept in each portal's request journal; 0: no journal |
| B24EMU_CONTROL_TOKEN | "" | bearer token required by `/_emulator/` ("" : open, loopback only) |
| B24EMU_ALLOWED_HOSTS | "" | more Host names `/_emulator/` answers tokenless, comma-separated |
| B24EMU_EVENT_HOSTS | "" | hosts event handlers may live on besides loopback, comma-separated |
| B24EMU_HEADER_TIMEOUT | 10 | seconds a client has to send a request's head; then it is cut off |
| B24EMU_WAL_LIMIT_BYTES | 67108864 | the SQLite write-ahead log stays below this under load |

The README's settings table is this table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

ENV_PREFIX = "B24EMU_"
# The `b24emu serve` flag of a setting, named with its variable in error messages.
FLAGS = {"host": "--host", "port": "--port", "db": "--db", "fixtures": "--fixtures",
         "workers": "--workers", "threads": "--threads", "tls": "--tls"}
YES_NO = {"1": 1, "yes": 1, "true": 1, "on": 1, "0": 0, "no": 0, "false": 0, "off": 0, "": 0}
SWITCHES = {"tls", "pin_workers"}  # yes/no settings, kept as 1/0


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """The emulator's configuration; build with `Settings.from_env()` or directly in tests."""

    host: str = "127.0.0.1"
    port: int = 8080
    db: str = "b24emu.sqlite3"
    fixtures: str = "fixtures/default.json"
    workers: int = 2
    threads: int = 4
    pin_workers: int = 1
    timezone: str = "UTC"
    attach_max_bytes: int = 30720
    max_body_bytes: int = 8 * 1024 * 1024
    log_level: str = "INFO"
    rate_limit: str = "standard"
    rate_capacity: float | None = None
    rate_drain: float | None = None
    operating_limit: float = 480.0
    operating_costs: str = ""
    tls: int = 0
    tls_dir: str = ".b24emu-tls"
    tls_names: str = ""
    journal_max: int = 10000
    control_token: str = ""
    allowed_hosts: str = ""
    event_hosts: str = ""
    header_timeout: float = 10.0
    wal_limit_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then B24EMU_* variables, then explicit overrides (e.g. CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _convert(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some settings changed (None leaves a setting as it is)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def setting_label(name: str) -> str:
    """How messages name a setting: `--port / B24EMU_PORT`, or the variable alone."""
    variable = ENV_PREFIX + name.upper()
    return f"{FLAGS[name]} / {variable}" if name in FLAGS else variable


def _convert(name: str, type_name: Any, raw: str) -> Any:
    """Parse one environment value into the field's type, naming the setting on failure."""
    if name in SWITCHES:
        if raw.strip().lower() not in YES_NO:
            raise ConfigError(f"{setting_label(name)} must be yes or no (or 1/0, true/false, "
                              f"on/off), got {raw!r}")
        return YES_NO[raw.strip().lower()]
    if type_name in (float, "float | None", "float"):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{setting_label(name)} must be a number, got {raw!r}") from None
    if type_name in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            message = f"{setting_label(name)} must be an integer, got {raw!r}"
            raise ConfigError(message) from None
    return raw
