"""The cost of a REST call: one write transaction per call, and the /rest/ fast path answering
exactly as the Flask route does."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

ADD = "/rest/1/devtoken/im.notify.personal.add.json"
BODY = {"USER_ID": 2, "MESSAGE": "hi", "TAG": "t",
        "ATTACH": [{"MESSAGE": "small attach"}, {"DELIMITER": {"SIZE": 200}}]}


def _statements(emulator, run) -> list[str]:
    conn = emulator.database.db.conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    return seen


def test_an_add_its_journal_row_and_its_rate_count_are_one_transaction(client, emulator):
    client.post(ADD, json=BODY)  # the first call reads what later calls keep cached
    seen = _statements(emulator, lambda: client.post(ADD, json=BODY))
    begins = [s for s in seen if s.startswith("BEGIN")]
    assert len(begins) == 1 and seen.count("COMMIT") == 1
    unit = seen[seen.index(begins[0]):seen.index("COMMIT")]
    assert [s.split()[:3] for s in unit if s.startswith("INSERT")] == [
        ["INSERT", "INTO", "notifications"], ["INSERT", "INTO", "journal"],
        ["INSERT", "INTO", "rate_buckets"]]
    # 7: the early rate check read nothing (the level is far from full); the control state and
    # the operating budget were kept from the call before (no process changed them)
    assert len(seen) <= 7
    entry = emulator.control.journal("default")[0]
    assert entry["status"] == 200 and entry["method"] == "im.notify.personal.add"
    assert emulator.notifications.for_recipient("default", 2)[0]["message"] == "hi"
    assert len(emulator.notifications.for_recipient("default", 2)) == 1  # TAG replaced


@pytest.mark.parametrize(("url", "body"), [
    (ADD, BODY),  # writes a notification
    (ADD, {"USER_ID": 2}),  # MESSAGE_EMPTY before any write
    ("/rest/1/devtoken/server.time.json", {}),  # writes nothing
])
def test_a_bucket_filled_by_another_worker_meanwhile_undoes_the_call(client, emulator,
                                                                    monkeypatch, url, body):
    """`fits` said yes, then (as if another worker's calls came in between) the bucket is full
    when the call is counted: whatever it wrote is rolled back and the call is refused like any
    other, with one journal row."""
    from b24emu.store.limits import RateLimiter

    limiter = emulator.rate_limiter
    now = emulator.clock.now()
    with emulator.database.write() as db:
        db.execute("INSERT INTO rate_buckets (portal, client_ip, level, updated_at)"
                   " VALUES ('default', '127.0.0.1', ?, ?)", [limiter.limit.capacity, now])
    monkeypatch.setattr(RateLimiter, "fits", lambda self, portal, ip, at: True)
    response = client.post(url, json=body)
    assert response.status_code == 503
    assert response.get_json()["error"] == "QUERY_LIMIT_EXCEEDED"
    assert emulator.notifications.for_recipient("default", 2) == []
    entries = emulator.control.journal("default")
    assert [(e["status"], e["error"]) for e in entries] == [(503, "QUERY_LIMIT_EXCEEDED")]
    level = emulator.database.query("SELECT level FROM rate_buckets")[0]["level"]
    assert level == pytest.approx(limiter.limit.capacity)  # the refusal counted nothing
    assert not emulator.database.db.conn.in_transaction
    assert emulator.database.write_lock_free()


def test_the_write_lock_is_free_after_every_kind_of_call(client, emulator):
    database = emulator.database
    for url, body in [(ADD, BODY), (ADD, {"USER_ID": 2}),  # MESSAGE_EMPTY after no write
                      (ADD, {"USER_ID": 99999, "MESSAGE": "x"}),  # no such user: false
                      ("/rest/1/wrongtoken/im.notify.personal.add", BODY),
                      ("/rest/1/devtoken/batch", {"cmd": {"a": "im.notify.personal.add?"
                                                          "USER_ID=2&MESSAGE=b"}})]:
        client.post(url, json=body)
        assert not database.db.conn.in_transaction
        assert database._write_lock.acquire(blocking=False)
        database._write_lock.release()
    assert emulator.control.journal_count("default") == 5


def test_a_failing_call_keeps_its_journal_row(client, emulator, monkeypatch):
    from b24emu.store.notifications import NotificationStore

    def broken(self, notification):
        with self.database.write() as db:
            db.execute("INSERT INTO notifications (portal, recipient_id, message, created_at)"
                       " VALUES ('default', 2, 'half', 0)")
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(NotificationStore, "add", broken)
    response = client.post(ADD, json=BODY)
    assert response.status_code == 500
    assert response.get_json()["error"] == "INTERNAL_SERVER_ERROR"
    assert emulator.notifications.for_recipient("default", 2) == []  # rolled back
    assert emulator.control.journal("default")[0]["status"] == 500
    assert not emulator.database.db.conn.in_transaction


CASES = [
    ("POST", ADD, {"json": {"USER_ID": 2}}),
    ("POST", "/rest/1/devtoken/no.such.method.xml", {}),
    ("GET", "/rest//1//devtoken/im.notify.personal.add/?USER_ID=0", {}),
    ("POST", "/rest/1/wrongtoken/im.notify.personal.add", {"data": {"auth": "x"}}),
    ("POST", "/rest/im.notify.personal.add", {"headers": {"Authorization": "Bearer nope"}}),
    ("OPTIONS", ADD, {}),
    ("HEAD", "/rest/1/devtoken/server.time", {}),
    ("POST", ADD, {"data": b"x" * 64, "headers": {"Content-Length": "999999999"}}),
    ("POST", "/rest/", {}),
    ("DELETE", "/rest/a/b/c/d/e", {}),
    ("GET", ADD, {"headers": {"Host": "x" * 64 + ".test"}}),
    ("GET", ADD.replace(".json", ".xml"), {"headers": {"Host": "[::1]:8080"}}),
    ("GET", "/rest/1/devtoken/user.current.json", {}),  # a success with a result
    ("POST", "/rest/1/devtoken/batch", {"json": {"cmd": {"a": "user.current",
                                                         "b": "no.such.method"}}}),
]


@pytest.mark.parametrize("method, url, kwargs", CASES)
def test_fast_path_answers_as_the_flask_route(app, method, url, kwargs):
    fast = Client(app.wsgi_app)
    routed = Client(app.wsgi_app.flask_app)  # Flask's own dispatch to the same view
    answers = []
    for client in (fast, routed):
        response = client.open(url, method=method, **kwargs)
        body = response.get_data()
        if body.startswith(b"{"):
            body = json.loads(body)
            body.pop("time", None)  # the clock moves between the two calls
            if isinstance(body.get("result"), dict):
                body["result"].pop("result_time", None)
        answers.append((response.status_code, sorted(response.headers.items()), body))
    assert answers[0] == answers[1]


def test_a_unit_whose_transaction_was_committed_early_releases_the_lock(emulator):
    database = emulator.database
    with database.unit():
        with database.joined(), database.write() as db:
            db.execute("INSERT INTO control (key, value) VALUES ('probe', '1')")
        database.db.conn.execute("COMMIT")  # e.g. a library that commits what it did not open
        with database.write() as db:  # must not wait for the lock this thread holds
            db.execute("UPDATE control SET value = '2' WHERE key = 'probe'")
    assert database.query("SELECT value FROM control WHERE key = 'probe'") == [{"value": "2"}]
    assert database._write_lock.acquire(blocking=False)
    database._write_lock.release()


def test_no_log_line_is_written_while_the_write_lock_is_held(client, emulator):
    import logging

    held = []

    class Probe(logging.Handler):
        def emit(self, record):
            held.append(emulator.database._write_lock.locked())

    logger = logging.getLogger("b24emu.rest")
    probe, level = Probe(), logger.level
    logger.addHandler(probe)
    logger.setLevel(logging.INFO)
    try:
        client.post(ADD, json=BODY)  # a write, then the call's log line
        client.post(ADD, json={"USER_ID": 2})  # an error answer
    finally:
        logger.removeHandler(probe)
        logger.setLevel(level)
    assert held == [False, False]


@pytest.mark.parametrize("unit", [False, True])
def test_a_failure_that_ended_the_transaction_is_raised_as_itself(emulator, unit):
    """SQLite rolls a transaction back by itself on some errors (a full disk, a trigger's
    RAISE(ROLLBACK)): the error that did it is what surfaces, and the lock is free after."""
    import contextlib

    database = emulator.database
    with pytest.raises(ValueError, match="disk full"):
        with database.unit() if unit else contextlib.nullcontext():
            with database.joined(), database.write() as db:
                db.execute("INSERT INTO control (key, value) VALUES ('probe', '1')")
                db.conn.execute("ROLLBACK")  # what SQLite did
                raise ValueError("disk full")
    assert not database.db.conn.in_transaction
    assert database._write_lock.acquire(blocking=False)
    database._write_lock.release()


def test_the_state_a_quick_call_was_chosen_on_is_the_one_it_runs_with(emulator):
    """`calls_are_quick` (the event loop's check) and that call's `sync` see one control state,
    whatever other threads do in between: a pool thread's `sync` used to drop the event loop's
    snapshot, so a fault armed meanwhile (latency up to 60 s) ran on the event loop."""
    import threading

    assert emulator.calls_are_quick()
    other = threading.Thread(target=emulator.sync)  # a pool thread starting its own call
    other.start()
    other.join()
    emulator.control.add_fault("default", method="*", error=None, description="",
                               status=None, latency=30, times=None, probability=1.0,
                               now=emulator.clock.now())
    assert not emulator.sync().faults_armed  # the state the quick check decided on
    assert emulator.sync().faults_armed  # the next call reads afresh


def test_a_rest_call_leaves_no_garbage_cycle(app):
    """A call's objects are freed as it ends: a cycle left per call (a request and its environ
    holding each other) made the garbage collector pause a worker every few dozen calls."""
    import gc
    import threading

    from b24emu.server import _call_wsgi
    from werkzeug.test import EnvironBuilder

    def call() -> int:
        environ = EnvironBuilder(path=ADD, method="POST", json=BODY).get_environ()
        return _call_wsgi(app, environ, threading.Event())[0]

    assert call() == 200  # caches filled
    gc.collect()
    gc.disable()
    try:
        statuses = [call() for _ in range(20)]
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert statuses == [200] * 20
