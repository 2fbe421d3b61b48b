"""Two consumers calling event.offline.get at once each get their own records: the free records
are picked and reserved in one write transaction."""

from __future__ import annotations

import threading

import pytest
from b24emu.events import fire

from tests.conftest import queue_app

WAIT = 30  # seconds: only a broken test waits this long


@pytest.fixture
def app(settings, clock, tmp_path):
    return queue_app(settings, clock, tmp_path)


def get(app, **params) -> list[int]:
    reply = app.test_client().post("/rest/event.offline.get.json",
                                   json={"auth": "admintoken", **params})
    assert reply.status_code == 200, reply.get_json()
    return [int(record["ID"]) for record in reply.get_json()["result"]["events"]]


def test_a_consumer_that_comes_in_between_pick_and_reserve_takes_other_records(
        app, emulator, monkeypatch):
    reply = app.test_client().post("/rest/event.bind.json", json={
        "auth": "admintoken", "event": "ONCRMDEALUPDATE", "event_type": "offline"})
    assert reply.status_code == 200, reply.get_json()
    for deal in range(1, 7):
        fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": deal}}, 1)
    events, database = emulator.events, emulator.database
    reserve = events.offline_reserve
    acquire = database._acquire
    other: dict = {}
    done, blocked = threading.Event(), threading.Event()

    def second_consumer():
        try:
            other["ids"] = get(app, clear=0, limit=3)
        finally:
            done.set()

    def watched_acquire():
        # The second consumer waits for the write lock the first one holds.
        if threading.current_thread() is thread and database._write_lock.locked():
            blocked.set()
        acquire()

    def racing_reserve(*args, **kwargs):
        # The first consumer has picked its records: the second one comes in now and goes
        # as far as it can (to its end, or until it waits for the write lock).
        if not thread.is_alive() and not done.is_set():
            thread.start()
            for _ in range(WAIT * 100):
                if done.wait(0.01) or blocked.is_set():
                    break
        return reserve(*args, **kwargs)

    thread = threading.Thread(target=second_consumer)
    monkeypatch.setattr(database, "_acquire", watched_acquire)
    monkeypatch.setattr(events, "offline_reserve", racing_reserve)
    mine = get(app, clear=0, limit=3)
    thread.join(WAIT)
    assert done.is_set()
    assert (mine, other["ids"]) in (([1, 2, 3], [4, 5, 6]), ([4, 5, 6], [1, 2, 3]))


def test_the_queue_is_read_and_sorted_without_the_write_lock(app, emulator, monkeypatch):
    """Picking reads the app's whole free queue and sorts it in Python (a second at 50,000
    records): no writer of any worker waits for that; the reserve takes the lock."""
    from b24emu.methods import events as events_methods

    reply = app.test_client().post("/rest/event.bind.json", json={
        "auth": "admintoken", "event": "ONCRMDEALUPDATE", "event_type": "offline"})
    assert reply.status_code == 200, reply.get_json()
    for deal in range(1, 5):
        fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": deal}}, 1)
    pick, lock_free_at_pick = events_methods._pick, []

    def watched_pick(*args, **kwargs):
        lock_free_at_pick.append(emulator.database.write_lock_free())
        return pick(*args, **kwargs)

    monkeypatch.setattr(events_methods, "_pick", watched_pick)
    assert get(app, clear=0, limit=3) == [1, 2, 3]
    # The first pick reads the free queue; the last one reads this call's own records (by
    # process id, in SQL) inside the call's transaction, after the reserve.
    assert lock_free_at_pick == [True, False]
