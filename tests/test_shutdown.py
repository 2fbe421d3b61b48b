"""Graceful shutdown of the real server: SIGTERM lets in-flight calls finish and loses nothing.

The calls are made slow with a latency fault armed through the control API (the fault sleeps in
real time inside the call, before the notification is stored). The test waits until every slow
call has taken the fault — so all of them are inside the server — before it sends SIGTERM, and
asserts outcomes only: complete answers, stored ids, exit status, refused connections.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time

import requests

from tests.test_server import Server

IN_FLIGHT = 6
LATENCY_SECONDS = 3.0


def _fault_left(db_path) -> int:
    """Calls the armed fault has still to slow down (0 once every slow call has taken it)."""
    with sqlite3.connect(db_path, timeout=30) as conn:
        row = conn.execute("SELECT coalesce(sum(remaining), 0) FROM faults").fetchone()
    return row[0]


def _refused(port: int) -> bool:
    """True when a new connection gets no HTTP answer (refused or reset)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
            return not sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return True


def test_sigterm_finishes_in_flight_calls_and_keeps_every_acknowledged_id(tmp_path):
    db_path = tmp_path / "shutdown.sqlite3"
    # Enough threads that every slow call runs at once (2 workers x 8 threads).
    server = Server(db_path, "fixtures/default.json", {"B24EMU_THREADS": "8"})
    try:
        before = requests.post(f"{server.base}/rest/1/devtoken/im.notify.personal.add",
                               json={"USER_ID": 2, "MESSAGE": "before"}, timeout=10).json()
        fault = requests.post(f"{server.base}/_emulator/faults", json={
            "method": "im.notify.personal.add", "latency": LATENCY_SECONDS,
            "times": IN_FLIGHT}, timeout=10)
        assert fault.status_code == 201

        answers: dict[int, requests.Response | BaseException] = {}

        def call(index: int) -> None:
            try:
                answers[index] = requests.post(
                    f"{server.base}/rest/1/devtoken/im.notify.personal.add",
                    json={"USER_ID": 2, "MESSAGE": f"in flight {index}",
                          "TAG": f"flight-{index}"}, timeout=60)
            except BaseException as error:  # noqa: BLE001 - reported by the assertions below
                answers[index] = error

        threads = [threading.Thread(target=call, args=(i,)) for i in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _fault_left(db_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _fault_left(db_path) == 0, "the slow calls never reached the server"

        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not _refused(server.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        refused_after_sigterm = _refused(server.port)
        for thread in threads:
            thread.join(timeout=60)
        output, _ = server.process.communicate(timeout=60)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()

    assert refused_after_sigterm, "a new connection was still served after SIGTERM"
    assert server.process.returncode == 0, output
    assert sorted(answers) == list(range(IN_FLIGHT))
    ids = {}
    for index, answer in answers.items():
        assert isinstance(answer, requests.Response), f"call {index} failed: {answer!r}"
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body["result"], int) and "time" in body
        ids[body["result"]] = f"in flight {index}"
    assert len(ids) == IN_FLIGHT

    with sqlite3.connect(db_path) as conn:
        stored = dict(conn.execute("SELECT id, message FROM notifications").fetchall())
    assert stored == {before["result"]: "before", **ids}
    assert "Traceback" not in output
