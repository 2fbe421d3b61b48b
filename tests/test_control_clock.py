"""The emulator clock through /_emulator/clock: what REST clients see when it moves."""

from __future__ import annotations

import pytest

from tests.conftest import T0

API = "/_emulator/clock"


def date_start(rest) -> str:
    reply = rest.webhook("server.time")
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["time"]["date_start"]


def test_get_follows_the_real_clock(client, clock):
    assert client.get(API).get_json() == {"now": T0, "iso": "2026-01-01T00:00:00+00:00",
                                          "frozen": False, "offset": 0.0}
    clock.advance(10)
    assert client.get(API).get_json()["now"] == T0 + 10


def test_freeze_holds_the_rest_time(client, rest, clock):
    clock.advance(5)
    frozen = client.post(API, json={"freeze": True}).get_json()
    assert frozen["frozen"] is True and frozen["now"] == T0 + 5
    clock.advance(3600)
    assert date_start(rest) == "2026-01-01T00:00:05+00:00"
    assert rest.webhook("server.time").get_json()["time"]["start"] == T0 + 5
    unfrozen = client.post(API, json={"freeze": False}).get_json()
    assert unfrozen == {"now": T0 + 5, "iso": "2026-01-01T00:00:05+00:00", "frozen": False,
                        "offset": -3600.0}
    clock.advance(1)
    assert date_start(rest) == "2026-01-01T00:00:06+00:00"


def test_advance_moves_running_or_frozen(client, rest, clock):
    assert client.post(API, json={"advance": 3600}).get_json()["now"] == T0 + 3600
    assert date_start(rest) == "2026-01-01T01:00:00+00:00"
    clock.advance(60)
    assert date_start(rest) == "2026-01-01T01:01:00+00:00"  # still running
    client.post(API, json={"freeze": True, "advance": 60})  # advance applies before freeze
    assert client.get(API).get_json()["now"] == T0 + 3600 + 120
    client.post(API, json={"advance": 0.5})
    assert client.get(API).get_json()["now"] == T0 + 3720.5
    created = rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "later"})
    item = client.get(f"/_emulator/notifications/{created}").get_json()
    assert item["created_at"] == T0 + 3720.5 and item["created"] == "2026-01-01T01:02:00+00:00"


def test_set_takes_unix_or_iso(client, rest):
    client.post(API, json={"set": "2030-06-01T12:00:00Z"})
    assert date_start(rest) == "2030-06-01T12:00:00+00:00"
    client.post(API, json={"set": 1_900_000_000})
    assert client.get(API).get_json()["now"] == 1_900_000_000
    client.post(API, json={"set": "2030-06-01T12:00:00", "freeze": True})  # naive: portal zone
    assert client.get(API).get_json()["iso"] == "2030-06-01T12:00:00+00:00"
    client.post(API, json={"set": "2031-01-01T00:00:00+03:00"})  # frozen: stays frozen
    state = client.get(API).get_json()
    assert state["frozen"] is True and state["iso"] == "2030-12-31T21:00:00+00:00"


def test_delete_goes_back_to_real_time(client, rest, clock):
    client.post(API, json={"set": "2040-01-01T00:00:00Z", "freeze": True})
    state = client.delete(API).get_json()
    assert state == {"now": T0, "iso": "2026-01-01T00:00:00+00:00", "frozen": False,
                     "offset": 0.0}
    assert date_start(rest) == "2026-01-01T00:00:00+00:00"


def test_token_expires_when_the_clock_passes_it(client, rest):
    assert rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "a"}).status_code == 200
    client.post(API, json={"set": "2099-12-31T23:59:58Z"})
    assert rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "b"}).status_code == 200
    client.post(API, json={"advance": 2})
    reply = rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "c"})
    assert reply.status_code == 401
    assert reply.get_json() == {"error": "expired_token",
                                "error_description": "The access token provided has expired"}
    assert rest.webhook("server.time").status_code == 200  # webhooks never expire
    client.delete(API)
    assert rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "d"}).status_code == 200


def test_a_full_rate_bucket_drains_after_advance(client, rest):
    client.post(API, json={"freeze": True})
    for _ in range(50):  # standard preset: capacity 50, drains 2 per second
        assert rest.webhook("server.time").status_code == 200
    refused = rest.webhook("server.time")
    assert refused.status_code == 503 and refused.get_json()["error"] == "QUERY_LIMIT_EXCEEDED"
    client.post(API, json={"advance": 1})
    assert rest.webhook("server.time").status_code == 200
    assert rest.webhook("server.time").status_code == 200
    assert rest.webhook("server.time").status_code == 503
    client.post(API, json={"advance": 25})
    for _ in range(50):
        assert rest.webhook("server.time").status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"set": "tomorrow"}, "set"), ({"set": -1}, "set"), ({"set": True}, "set"),
    ({"set": 1e30}, "set"), ({"advance": "60"}, "advance"), ({"advance": 1e300}, "advance"),
    ({"freeze": "yes"}, "freeze"), ({"freeze": 1}, "freeze"), ({"rewind": 5}, "rewind"),
])
def test_bad_bodies_change_nothing(client, body, field):
    reply = client.post(API, json=body)
    assert reply.status_code == 400
    assert reply.get_json()["error_description"].startswith(f"{field}:")
    assert client.get(API).get_json()["now"] == T0


def test_not_json(client):
    for data in (b"{", b"[1]", b"5"):
        reply = client.post(API, data=data, content_type="application/json")
        assert reply.status_code == 400
