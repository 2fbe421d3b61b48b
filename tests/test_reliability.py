"""Crash safety and concurrency of the real server (gunicorn workers on one SQLite file), and
hostile credentials against the lookups.

Every check reads the SQLite file directly with sqlite3, not through the emulator.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT
from tests.test_server import Server, free_port

FIXTURES = "fixtures/default.json"
HOOK = "/rest/1/devtoken/im.notify.personal.add.json"


class KillableServer(Server):
    """`python -m b24emu serve` in its own session, so SIGKILL reaches gunicorn and its workers."""

    def __init__(self, db: Path, extra_env: dict | None = None, workers: int = 2):
        self.port = free_port()
        self.verify = True
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(db).with_suffix(f".{self.port}.log")
        env = {**os.environ, "B24EMU_LOG_LEVEL": "WARNING", **(extra_env or {})}
        with open(self.log_path, "w") as log:  # a file, not a pipe nobody reads
            self.process = subprocess.Popen(
                [sys.executable, "-m", "b24emu", "serve", "--port", str(self.port), "--db", str(db),
                 "--fixtures", FIXTURES, "--workers", str(workers)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            )
        self.process.stdout = open(self.log_path)  # what wait_ready() shows if it exits
        self.wait_ready()

    def kill(self) -> None:
        """SIGKILL the whole process group: master and workers die with no chance to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)  # a new session: its group id is its pid
        self.process.wait(timeout=30)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.stdout.close()
        return self.log_path.read_text()

    def add(self, session: requests.Session, **params) -> requests.Response:
        return session.post(self.base + HOOK, json={"USER_ID": 2, "MESSAGE": "m", **params},
                            timeout=30)


def read_db(db: Path, sql: str, args=()) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def integrity(db: Path) -> list:
    return read_db(db, "PRAGMA integrity_check")


# --- crash safety ----------------------------------------------------------------------------

STREAMS = 4
KILL_AFTER = 120  # acknowledged adds before the kill


def test_sigkill_mid_stream_loses_no_acknowledged_add(tmp_path):
    db = tmp_path / "crash.sqlite3"
    # a generous bucket: the limiter stays on, so its state goes through the crash too
    env = {"B24EMU_RATE_CAPACITY": "100000"}
    server = KillableServer(db, env)
    acknowledged: list[int] = []
    lock = threading.Lock()
    enough = threading.Event()

    def stream(index: int) -> None:
        session = requests.Session()
        for number in range(100_000):
            try:
                reply = server.add(session, MESSAGE=f"stream {index} add {number}")
            except requests.RequestException:
                return  # the server is gone
            if reply.status_code != 200:
                return
            with lock:
                acknowledged.append(reply.json()["result"])
                if len(acknowledged) >= KILL_AFTER:
                    enough.set()

    threads = [threading.Thread(target=stream, args=(index,)) for index in range(STREAMS)]
    try:
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=120), "the stream did not get going"
        server.kill()  # while every stream is mid-request
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    assert len(acknowledged) >= KILL_AFTER
    assert integrity(db) == [("ok",)]
    stored = {row[0] for row in read_db(db, "SELECT id FROM notifications")}
    assert set(acknowledged) <= stored  # every add answered with an id survived the kill

    restarted = KillableServer(db, env)
    try:
        session = requests.Session()
        after = restarted.add(session, MESSAGE="after the crash")
        assert after.status_code == 200
        assert after.json()["result"] > max(stored)  # ids keep growing
        assert after.json()["time"]["operating"] >= 0
    finally:
        restarted.stop()
    assert integrity(db) == [("ok",)]
    buckets = read_db(db, "SELECT level, updated_at FROM rate_buckets")
    assert buckets and all(level >= 0 for level, _ in buckets)
    assert all(level <= 100000 for level, _ in buckets)


def test_bucket_state_after_a_crash_still_admits(tmp_path):
    db = tmp_path / "bucket.sqlite3"
    env = {"B24EMU_RATE_CAPACITY": "5", "B24EMU_RATE_DRAIN": "0.0001"}
    server = KillableServer(db, env)
    try:
        session = requests.Session()
        statuses = [server.add(session).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [503] * 2
        server.kill()
    finally:
        server.stop()
    [(level, _)] = read_db(db, "SELECT level, updated_at FROM rate_buckets")
    assert 4.99 <= level <= 5  # refused requests added nothing; the crash changed nothing
    # the bucket persists across the restart (a portal's does too): still full, then drains
    read_db(db, "UPDATE rate_buckets SET updated_at = updated_at - 100000")
    restarted = KillableServer(db, env)
    try:
        reply = restarted.add(requests.Session())
        assert reply.status_code == 200  # admitted again once the level drained
    finally:
        restarted.stop()
    levels = [row[0] for row in read_db(db, "SELECT level FROM rate_buckets")]
    assert all(0 <= level <= 5 for level in levels)
    assert integrity(db) == [("ok",)]


# --- concurrency across processes ------------------------------------------------------------

THREADS = 16
PER_THREAD = 25


def run_threads(server: KillableServer, params_for) -> list[list[int]]:
    """THREADS clients, each its own connection, each PER_THREAD adds in a row."""
    answers: list[list[int]] = [[] for _ in range(THREADS)]
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def client(index: int) -> None:
        session = requests.Session()
        start.wait()
        for number in range(PER_THREAD):
            reply = server.add(session, **params_for(index, number))
            if reply.status_code != 200:
                failures.append(f"{reply.status_code} {reply.text[:200]}")
                return
            answers[index].append(reply.json()["result"])

    threads = [threading.Thread(target=client, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    return answers


@pytest.fixture
def busy_server(tmp_path):
    db = tmp_path / "busy.sqlite3"
    server = KillableServer(db, {"B24EMU_RATE_LIMIT": "off", "B24EMU_MAX_BODY_BYTES": "4096"},
                            workers=3)
    yield server, db
    server.stop()


def test_concurrent_adds_with_one_tag_leave_exactly_one(busy_server):
    server, db = busy_server
    answers = run_threads(server, lambda index, number: {"TAG": "same-tag",
                                                         "MESSAGE": f"{index}/{number}"})
    ids = [notification_id for thread in answers for notification_id in thread]
    assert len(ids) == THREADS * PER_THREAD and len(set(ids)) == len(ids)
    rows = read_db(db, "SELECT id, message FROM notifications WHERE recipient_id = 2"
                       " AND notify_tag LIKE ?", ["MP|%|same-tag"])
    assert len(rows) == 1
    assert rows[0][0] == max(ids)  # the last write wins and removed every earlier one
    assert integrity(db) == [("ok",)]


def test_concurrent_adds_with_distinct_tags_are_all_kept_in_order(busy_server):
    server, db = busy_server
    answers = run_threads(server, lambda index, number: {"TAG": f"tag-{index}-{number}"})
    ids = [notification_id for thread in answers for notification_id in thread]
    assert len(ids) == THREADS * PER_THREAD and len(set(ids)) == len(ids)
    for thread in answers:  # one connection's answers come in increasing id order
        assert thread == sorted(thread) and len(set(thread)) == len(thread)
    stored = {row[0] for row in read_db(db, "SELECT id FROM notifications WHERE notify_tag"
                                            " LIKE ?", ["MP|%|tag-%"])}
    assert stored == set(ids)
    assert integrity(db) == [("ok",)]


def test_chunked_body_over_real_http(busy_server):
    # gunicorn hands over a chunked body with no Content-Length: it decodes like any other
    server, db = busy_server

    def chunks():
        yield b"USER_ID=2&"
        yield b"MESSAGE=chunked"

    reply = requests.post(server.base + HOOK, data=chunks(), timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200, reply.text
    assert read_db(db, "SELECT message FROM notifications WHERE id = ?",
                   [reply.json()["result"]]) == [("chunked",)]

    def too_many():
        yield b"USER_ID=2&MESSAGE=chunked&PAD="
        for _ in range(10):
            yield b"x" * 1000

    over = requests.post(server.base + HOOK, data=too_many(), timeout=30,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert over.status_code == 413
    assert over.json() == {"error": "REQUEST_ENTITY_TOO_LARGE",
                           "error_description": "Request body is larger than 4096 bytes"}


# --- hostile values in credential lookups ------------------------------------------------------

HOSTILE = [
    "' OR '1'='1", "devtoken' --", "devtoken'; DROP TABLE webhooks; --", '"', "%", "_",
    "devtoke_", "devtoke%", "%00", "devtoken%00", "\\", "é", "😀", "ｄｅｖｔｏｋｅｎ", "x" * 20000,
    "1 OR 1=1", "%27", "%ff",
]


@pytest.fixture
def hostile_client(settings, clock):
    from dataclasses import replace

    from b24emu import create_app

    return create_app(replace(settings, rate_limit="off"), clock=clock).test_client()


def _portal_tables(db: str) -> list:
    return read_db(Path(db), "SELECT (SELECT count(*) FROM webhooks), (SELECT count(*) FROM users),"
                             " (SELECT count(*) FROM tokens)")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_webhook_code_and_login(hostile_client, settings, value):
    before = _portal_tables(settings.db)
    for path in (f"/rest/1/{value}/im.notify.personal.add", f"/rest/{value}/devtoken/im.notify"
                 ".personal.add", f"/rest/admin/{value}/im.notify.personal.add"):
        reply = hostile_client.post(path, json={"USER_ID": 2, "MESSAGE": "x"})
        assert reply.status_code == 401, (path[:80], reply.get_data()[:200])
        assert reply.get_json()["error"] == "INVALID_CREDENTIALS"
    assert _portal_tables(settings.db) == before
    assert integrity(Path(settings.db)) == [("ok",)]


@pytest.mark.parametrize("value", [*HOSTILE, "\x00", "devaccesstoken\x00"])
def test_hostile_oauth_token(hostile_client, settings, value):
    before = _portal_tables(settings.db)
    for request in (
        {"json": {"auth": value, "USER_ID": 2, "MESSAGE": "x"}},
        {"json": {"access_token": value, "USER_ID": 2, "MESSAGE": "x"}},
        {"json": {"USER_ID": 2, "MESSAGE": "x"},
         "headers": {"Authorization": "Bearer " + value.replace("\x00", "%00").strip()}},
    ):
        reply = hostile_client.post("/rest/im.notify.personal.add", **request)
        assert reply.status_code == 401, reply.get_data()[:200]
        assert reply.get_json()["error"] in ("invalid_token", "NO_AUTH_FOUND")
    assert _portal_tables(settings.db) == before
    assert integrity(Path(settings.db)) == [("ok",)]


@pytest.mark.parametrize("login", ["9223372036854775808", "1" + "0" * 30, "9" * 5000])
def test_out_of_range_numeric_webhook_user(hostile_client, login):
    reply = hostile_client.post(f"/rest/{login}/devtoken/im.notify.personal.add",
                                json={"USER_ID": 2, "MESSAGE": "x"})
    assert (reply.status_code, reply.get_json()["error"]) == (401, "INVALID_CREDENTIALS")
