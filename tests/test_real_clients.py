"""Real, unmodified client libraries against a real `b24emu serve` over HTTP."""

from __future__ import annotations

import sqlite3

import pytest
import requests
from fast_bitrix24 import Bitrix

from tests.test_server import Server


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "clients.sqlite3", "fixtures/default.json")
    yield running
    running.stop()


def stored_messages(server) -> list[str]:
    db = server.process.args[server.process.args.index("--db") + 1]
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT message FROM notifications ORDER BY id")]


def test_a_burst_of_60_sees_503_after_the_50th(tmp_path):
    # Capacity 50 as on a portal; a near-zero drain makes the count exact on any machine.
    burst = Server(tmp_path / "burst.sqlite3", "fixtures/default.json",
                   {"B24EMU_RATE_DRAIN": "0.0001"})
    try:
        statuses = [
            requests.get(f"{burst.base}/rest/1/devtoken/im.notify.personal.add.json",
                         params={"USER_ID": 2, "MESSAGE": f"burst {i}"}, timeout=5).status_code
            for i in range(60)
        ]
    finally:
        burst.stop()
    assert statuses == [200] * 50 + [503] * 10


def test_fast_bitrix24_completes_60_calls_through_the_limit(server):
    client = Bitrix(f"{server.base}/rest/1/devtoken/", verbose=False)
    ids = [client.call("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": f"fb {i}"}, raw=True)
           ["result"] for i in range(60)]
    assert len(set(ids)) == 60 and ids == sorted(ids)
    assert stored_messages(server) == [f"fb {i}" for i in range(60)]


def test_fast_bitrix24_batched_call_list(server):
    client = Bitrix(f"{server.base}/rest/1/devtoken/", verbose=False)
    items = [{"USER_ID": 2, "MESSAGE": f"list {i}", "TAG": f"t{i % 3}"} for i in range(9)]
    results = client.call("im.notify.personal.add", items)
    assert len(results) == 9 and all(isinstance(r, int) for r in results)
    # TAG replacement: three tags for one recipient leave three notifications.
    assert stored_messages(server) == ["list 6", "list 7", "list 8"]
