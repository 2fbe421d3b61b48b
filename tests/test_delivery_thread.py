"""A delivery thread outlives a delivery that fails unexpectedly, even when recording the failure
fails too; the tokens issued for such a delivery go with its record (trimmed or reset), as those
of any other delivery do."""

from __future__ import annotations

import sqlite3

import pytest
from b24emu.events import fire

from tests.conftest import queue_app

HANDLER = "http://127.0.0.1:9/handler"


@pytest.fixture
def app(settings, clock, tmp_path):
    app = queue_app(settings, clock, tmp_path)  # the test runs the delivery loop itself
    reply = app.test_client().post("/rest/event.bind.json", json={
        "auth": "admintoken", "event": "ONCRMDEALADD", "handler": HANDLER})
    assert reply.status_code == 200, reply.get_json()
    return app


@pytest.fixture
def loop(emulator, monkeypatch):
    """Run the delivery loop in this thread until the queue is empty (POSTs answered 200 ok,
    except the first when `posts_fail` is set); the statuses of the deliveries by id."""
    worker, events = emulator.deliveries, emulator.events
    real_has_queued = events.has_queued
    posts = []

    def has_queued():
        queued = real_has_queued()
        if not queued:
            worker._stop.set()
        return queued

    def post(url, body):
        posts.append(body)
        if len(posts) == 1 and loop.first_post_raises:
            raise RuntimeError("a bug while sending")
        return 200, "ok", None

    monkeypatch.setattr("b24emu.events.worker.POLL", 0)
    monkeypatch.setattr(events, "has_queued", has_queued)
    monkeypatch.setattr(worker, "_post", post)

    def loop():
        worker._run()  # returns once the queue is empty; raises if the loop died
        return {row["id"]: row["status"] for row in events.deliveries("default")[0]}

    loop.first_post_raises = True
    return loop


def test_the_loop_goes_on_when_recording_an_unexpected_failure_fails_too(
        emulator, loop, monkeypatch):
    events = emulator.events
    real_finish = events.finish
    finishes = []

    def finish(*args, **kwargs):
        finishes.append(args)
        if len(finishes) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(events, "finish", finish)
    [first] = fire(emulator, "default", "ONCRMDEALADD", {"FIELDS": {"ID": 1}}, 1)["deliveries"]
    [later] = fire(emulator, "default", "ONCRMDEALADD", {"FIELDS": {"ID": 2}}, 1)["deliveries"]
    statuses = loop()
    assert statuses[later] == "delivered"
    assert statuses[first] == "sending"  # its outcome could not be recorded


def test_the_tokens_of_a_delivery_that_failed_unexpectedly_go_with_it(emulator, client, loop,
                                                                     monkeypatch):
    issued = []
    real_issue = emulator.portals.issue_tokens

    def issue_tokens(*args, **kwargs):
        issued.append(real_issue(*args, **kwargs))
        return issued[-1]

    monkeypatch.setattr(emulator.portals, "issue_tokens", issue_tokens)
    [delivery_id] = fire(emulator, "default", "ONCRMDEALADD", {"FIELDS": {"ID": 1}},
                         1)["deliveries"]
    assert loop() == {delivery_id: "failed"}
    assert emulator.events.delivery("default", delivery_id)["error"] == "internal error"
    [tokens] = issued
    assert emulator.portals.token("default", tokens["access_token"]) is not None
    assert client.post("/_emulator/reset", json={"scope": "data"}).status_code == 200
    assert emulator.portals.token("default", tokens["access_token"]) is None


def test_a_delivered_event_stays_delivered_when_its_journal_row_cannot_be_written(
        emulator, loop, monkeypatch):
    """The outcome is committed first; if the journal row then fails, the loop's fallback
    ("internal error") must not overwrite what the handler answered."""
    loop.first_post_raises = False
    real_record, records = emulator.control.record, []

    def record(*args, **kwargs):
        records.append(args)
        if len(records) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(emulator.control, "record", record)
    [delivery_id] = fire(emulator, "default", "ONCRMDEALADD", {"FIELDS": {"ID": 1}},
                         1)["deliveries"]
    assert loop() == {delivery_id: "delivered"}
    delivery = emulator.events.delivery("default", delivery_id)
    assert (delivery["http_status"], delivery["error"]) == (200, None)
    assert len(records) == 1  # no second journal row for the same delivery
