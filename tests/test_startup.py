"""`b24emu serve` checks its settings before anything is printed or created (real CLI runs).

Each bad setting ends the command with exit status 2 and one line on stderr naming the flag, the
B24EMU_* variable and the value; stdout stays empty and no database file appears.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_server import free_port


def serve(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m b24emu serve` in `cwd` with only the given B24EMU_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("B24EMU_")}
    return subprocess.run([sys.executable, "-m", "b24emu", "serve", *args], cwd=cwd,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def refused(done: subprocess.CompletedProcess, cwd: Path, line: str) -> None:
    """Exit 2, exactly `b24emu: <line>` on stderr, nothing on stdout, nothing created."""
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"b24emu: {line}\n")
    assert not list(cwd.rglob("*.sqlite3*"))


@pytest.mark.parametrize(("args", "env", "line"), [
    (["--port", "99999"], {}, "--port / B24EMU_PORT must be between 1 and 65535, got 99999"),
    ([], {"B24EMU_PORT": "0"}, "--port / B24EMU_PORT must be between 1 and 65535, got 0"),
    ([], {"B24EMU_PORT": "eighty"}, "--port / B24EMU_PORT must be an integer, got 'eighty'"),
    ([], {"B24EMU_WORKERS": "0"}, "--workers / B24EMU_WORKERS must be at least 1, got 0"),
    (["--threads", "-2"], {}, "--threads / B24EMU_THREADS must be at least 1, got -2"),
    ([], {"B24EMU_LOG_LEVEL": "LOUD"},
     "B24EMU_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'"),
    ([], {"B24EMU_RATE_CAPACITY": "-1"}, "B24EMU_RATE_CAPACITY must be a positive number, got -1"),
    ([], {"B24EMU_RATE_DRAIN": "0"}, "B24EMU_RATE_DRAIN must be a positive number, got 0"),
    ([], {"B24EMU_HEADER_TIMEOUT": "0"},
     "B24EMU_HEADER_TIMEOUT must be a number of seconds of at least 0.001, got 0"),
    ([], {"B24EMU_HEADER_TIMEOUT": "inf"},
     "B24EMU_HEADER_TIMEOUT must be a number of seconds of at least 0.001, got inf"),
    ([], {"B24EMU_RATE_CAPACITY": "nan"},
     "B24EMU_RATE_CAPACITY must be a positive number, got nan"),
    ([], {"B24EMU_OPERATING_LIMIT": "-1"},
     "B24EMU_OPERATING_LIMIT must be 0 (off) or a positive number of seconds, got -1"),
    ([], {"B24EMU_OPERATING_COSTS": "im.notify.personal.add=-2"},
     "B24EMU_OPERATING_COSTS: 'im.notify.personal.add=-2' is not method=seconds (0 or more)"),
    ([], {"B24EMU_ATTACH_MAX_BYTES": "-1"},
     "B24EMU_ATTACH_MAX_BYTES must be at least 1, got -1"),
    ([], {"B24EMU_WAL_LIMIT_BYTES": "4096"},
     "B24EMU_WAL_LIMIT_BYTES must be at least 1048576, got 4096"),
    ([], {"B24EMU_MAX_BODY_BYTES": "0"}, "B24EMU_MAX_BODY_BYTES must be at least 1, got 0"),
    ([], {"B24EMU_JOURNAL_MAX": "-5"}, "B24EMU_JOURNAL_MAX must be 0 (no journal) or more, got -5"),
    ([], {"B24EMU_TLS": "maybe"},
     "--tls / B24EMU_TLS must be yes or no (or 1/0, true/false, on/off), got 'maybe'"),
    ([], {"B24EMU_PIN_WORKERS": "sometimes"},
     "B24EMU_PIN_WORKERS must be yes or no (or 1/0, true/false, on/off), got 'sometimes'"),
    ([], {"B24EMU_RATE_LIMIT": "fast"},
     "B24EMU_RATE_LIMIT: unknown rate limit preset 'fast' (choose standard, enterprise, off)"),
    ([], {"B24EMU_TIMEZONE": "Mars/Olympus"},
     "B24EMU_TIMEZONE: unknown time zone 'Mars/Olympus'"),
    (["--fixtures", "missing.json"], {},
     "--fixtures / B24EMU_FIXTURES no such file, got 'missing.json'"),
])
def test_a_bad_setting_is_one_line_and_creates_nothing(tmp_path, args, env, line):
    done = serve(tmp_path, "--db", "data/emu.sqlite3", *args, **{"B24EMU_PORT": str(free_port()),
                                                                  **env})
    refused(done, tmp_path, line)
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_is_named_before_the_banner(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve(tmp_path, "--port", str(port), "--db", "emu.sqlite3")
    refused(done, tmp_path, f"--port / B24EMU_PORT: port {port} on 127.0.0.1 is already in use "
                            "(stop what listens there or choose another port)")


def test_an_unknown_listen_address_is_named(tmp_path):
    done = serve(tmp_path, "--db", "emu.sqlite3", B24EMU_HOST="no-such-host.invalid",
                 B24EMU_PORT=str(free_port()))
    assert done.stderr.startswith(
        "b24emu: --host / B24EMU_HOST: cannot listen on 'no-such-host.invalid' (")
    refused(done, tmp_path, done.stderr[len("b24emu: "):-1])


def test_a_database_or_certificate_path_that_cannot_be_written(tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    port = str(free_port())
    done = serve(tmp_path, B24EMU_DB="notes.txt/sub/emu.sqlite3", B24EMU_PORT=port)
    refused(done, tmp_path, "--db / B24EMU_DB: cannot create the database "
                            f"'notes.txt/sub/emu.sqlite3' ({tmp_path / 'notes.txt'} is not a "
                            "directory)")
    done = serve(tmp_path, "--tls", B24EMU_TLS_DIR="notes.txt/tls", B24EMU_PORT=port)
    refused(done, tmp_path, "B24EMU_TLS_DIR: cannot create the certificate folder "
                            f"'notes.txt/tls' ({tmp_path / 'notes.txt'} is not a directory)")
    (tmp_path / "folder.sqlite3").mkdir()
    done = serve(tmp_path, "--db", "folder.sqlite3", "--port", port)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("b24emu: --db / B24EMU_DB: 'folder.sqlite3' is a directory, not a "
                           "database file\n")

