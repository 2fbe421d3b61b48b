"""End to end: the real `b24emu serve` (gunicorn workers, SQLite file) over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

# The scopes of the default portal's webhook of user 1 (and of its OAuth app): the ones apps use
# most, so stubs of their methods work against /rest/1/devtoken/ as the portal is shipped.
DEFAULT_SCOPES = json.loads((ROOT / "fixtures" / "default.json").read_text())["webhooks"][0][
    "scopes"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `python -m b24emu serve` process on a free port."""

    def __init__(self, db: Path, fixtures: str, extra_env: dict | None = None,
                 tls_dir: Path | None = None, log_file: Path | None = None, workers: int = 2):
        self.port = free_port()
        self.verify = str(tls_dir / "ca.pem") if tls_dir else True
        scheme = "https" if tls_dir else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        extra_args = ["--tls"] if tls_dir else []
        if tls_dir:
            extra_env = {**(extra_env or {}), "B24EMU_TLS_DIR": str(tls_dir)}
        env = {**os.environ, "B24EMU_LOG_LEVEL": "WARNING", **(extra_env or {})}
        log = log_file.open("w") if log_file else subprocess.STDOUT  # the log is stderr
        self.process = subprocess.Popen(
            [sys.executable, "-m", "b24emu", "serve", "--port", str(self.port), "--db", str(db),
             "--fixtures", fixtures, "--workers", str(workers), *extra_args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        )
        if log_file:
            log.close()  # the server has its own copy
        try:
            self.wait_ready()
        except BaseException:
            self.process.kill()  # never leave a server behind a failed start
            self.process.wait()
            raise

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stdout.read()}")
            try:
                health = requests.get(f"{self.base}/_emulator/health", timeout=1,
                                      verify=self.verify)
                if health.status_code == 200:
                    return
            except (requests.ConnectionError, FileNotFoundError, OSError):
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return output


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "e2e.sqlite3"


def test_default_portal_over_http_and_restart(db_path):
    server = Server(db_path, "fixtures/default.json")
    try:
        health = requests.get(f"{server.base}/_emulator/health", timeout=5)
        assert health.json()["status"] == "ready"
        response = requests.get(
            f"{server.base}/rest/1/devtoken/im.notify.personal.add.json",
            params={"USER_ID": 2, "MESSAGE": "hi"}, timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        assert isinstance(body["result"], int)
        assert set(body["time"]) == {"start", "finish", "duration", "processing", "date_start",
                                     "date_finish", "operating_reset_at", "operating"}
        denied = requests.post(f"{server.base}/rest/2/noimtoken/im.notify.personal.add",
                               json={"USER_ID": 1, "MESSAGE": "x"}, timeout=5)
        assert (denied.status_code, denied.json()["error"]) == (401, "insufficient_scope")
    finally:
        output = server.stop()
    assert f"webhook of user 1 [{','.join(DEFAULT_SCOPES)}]:" in output
    assert f"{server.base}/rest/1/devtoken/" in output
    assert f"inbox page: {server.base}/_emulator/ui/" in output
    first_id = body["result"]

    restarted = Server(db_path, "fixtures/default.json")
    try:
        again = requests.post(f"{restarted.base}/rest/1/devtoken/im.notify.personal.add",
                              json={"USER_ID": 2, "MESSAGE": "after restart"}, timeout=5).json()
        assert again["result"] > first_id
    finally:
        restarted.stop()
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT id, message FROM notifications ORDER BY id").fetchall()
    assert rows == [(first_id, "hi"), (again["result"], "after restart")]


def test_bad_fixture_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": [{"id": "one"}], "webhooks": [{"user_id": 1}]}')
    result = subprocess.run(
        [sys.executable, "-m", "b24emu", "serve", "--db", str(tmp_path / "x.sqlite3"),
         "--fixtures", str(bad), "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "users[0].id: Not a valid integer." in result.stderr
    assert "webhooks[0].code: Missing data for required field." in result.stderr
    assert "Traceback" not in result.stderr


def test_two_server_processes_share_one_rate_bucket(db_path):
    # A drain this slow makes the count exact whatever the machine's speed.
    env = {"B24EMU_RATE_CAPACITY": "20", "B24EMU_RATE_DRAIN": "0.0001"}
    first = Server(db_path, "fixtures/default.json", env)
    second = Server(db_path, "fixtures/default.json", env)
    try:
        statuses = []
        for index in range(40):
            base = (first if index % 2 else second).base
            reply = requests.get(f"{base}/rest/1/devtoken/im.notify.personal.add",
                                 params={"MESSAGE": "x"}, timeout=5)
            statuses.append(reply.status_code)
        assert statuses.count(400) == 20 and statuses.count(503) == 20
        assert statuses[:20] == [400] * 20
        assert requests.get(f"{first.base}/rest/1/devtoken/im.notify.personal.add",
                            timeout=5).json() == {"error": "QUERY_LIMIT_EXCEEDED",
                                                  "error_description": "Too many requests"}
    finally:
        first.stop()
        second.stop()


def test_a_failing_quick_check_sends_calls_to_the_pool_and_is_logged_once(caplog):
    """A lasting cause (an unreadable lock file, say) must not write a traceback per call."""
    import logging

    from b24emu.server import RsgiBridge

    def broken():
        raise OSError("lock file unreadable")

    bridge = RsgiBridge(None, 1, 1024, quick=broken)
    try:
        with caplog.at_level(logging.WARNING, logger="b24emu"):
            runs_at_once = [bridge._quick("/rest/1/code/server.time", b"", False)
                            for _ in range(5)]
    finally:
        bridge.pool.shutdown()
    assert runs_at_once == [False] * 5
    warned = [r for r in caplog.records if "quick-call check failed" in r.getMessage()]
    assert len(warned) == 1 and warned[0].exc_info is not None
