"""The request journal: one entry per REST call, secrets masked, filters, clear, cap."""

from __future__ import annotations

import pytest
from b24emu import create_app

from tests.conftest import T0

API = "/_emulator/journal"


def entries(client, query="") -> list[dict]:
    response = client.get(f"{API}{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_every_rest_call_is_journaled_with_secrets_masked(client, rest):
    rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "hi"})
    rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "via oauth"})
    client.get("/rest/im.notify.personal.add.json?access_token=devaccesstoken&USER_ID=2&MESSAGE=q")
    rest.webhook("im.notify.personal.add", {"USER_ID": 2}, code="wrongcode")
    rest.webhook("no.such.method")
    journal = client.get(API).get_json()
    assert journal["total"] == 5
    missing, wrong, query, oauth, hook = journal["items"]
    assert hook["path"] == "/rest/1/dev***/im.notify.personal.add.json"
    assert hook["http_method"] == "POST" and hook["status"] == 200 and hook["error"] is None
    assert hook["auth_type"] == "apauth" and hook["credential"] == "1" and hook["user_id"] == 1
    assert hook["params"] == {"USER_ID": 2, "MESSAGE": "hi"}
    assert hook["client_ip"] == "127.0.0.1" and hook["at"] == T0
    assert hook["duration"] >= 0 and len(hook["request_id"]) == 16
    assert oauth["params"]["auth"] == "dev***" and oauth["auth_type"] == "oauth"
    assert oauth["credential"] == "local.emulator.app"
    assert query["http_method"] == "GET" and query["params"]["access_token"] == "dev***"
    assert wrong["status"] == 401 and wrong["error"] == "INVALID_CREDENTIALS"
    assert wrong["path"] == "/rest/1/wro***/im.notify.personal.add.json"
    assert wrong["auth_type"] is None and wrong["user_id"] is None
    assert missing["status"] == 404 and missing["error"] == "ERROR_METHOD_NOT_FOUND"
    text = client.get(API).get_data(as_text=True)
    assert "devtoken" not in text and "devaccesstoken" not in text and "wrongcode" not in text
    assert set(hook) == {"id", "request_id", "at", "http_method", "path", "method", "auth_type",
                         "credential", "user_id", "client_ip", "params", "status", "error",
                         "duration", "stub_id"}
    assert client.get(f"{API}/{hook['id']}").get_json() == hook


def test_control_calls_are_not_journaled(client, rest):
    rest.webhook("server.time")
    client.get("/_emulator/notifications")
    client.get("/_emulator/clock")
    assert client.get(API).get_json()["total"] == 1


def test_notification_request_id_is_its_journal_entry(client, rest):
    rest.webhook("server.time")
    created = rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "hi"})
    rest.webhook("server.time")
    notification = client.get(f"/_emulator/notifications/{created}").get_json()
    found = entries(client, f"?request_id={notification['request_id']}")
    assert len(found) == 1
    assert found[0]["method"] == "im.notify.personal.add" and found[0]["status"] == 200


def test_batch_commands_share_the_batch_request_id(client, rest):
    reply = rest.webhook("batch", {"cmd": {
        "a": "im.notify.personal.add?USER_ID=2&MESSAGE=one",
        "b": "im.notify.personal.add?USER_ID=2&MESSAGE=two"}})
    assert reply.status_code == 200
    items = client.get("/_emulator/notifications").get_json()["items"]
    assert len(items) == 2 and items[0]["request_id"] == items[1]["request_id"]
    (entry,) = entries(client, f"?request_id={items[0]['request_id']}")
    assert entry["method"] == "batch"


def test_filters(client, rest, clock):
    rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "a"})
    clock.advance(60)
    rest.webhook("im.notify.personal.add", {"MESSAGE": "no user"})
    rest.webhook("im.notify.personal.add", {"USER_ID": 1, "MESSAGE": "b"}, user=2,
                 code="bobimtoken")
    rest.webhook("server.time")
    assert [e["error"] for e in entries(client, "?status=400")] == ["USER_ID_EMPTY"]
    assert len(entries(client, "?error=USER_ID_EMPTY")) == 1
    assert len(entries(client, "?method=im.notify.personal.add")) == 3
    assert len(entries(client, "?method=IM.NOTIFY.PERSONAL.ADD")) == 3
    assert [e["user_id"] for e in entries(client, "?user=2")] == [2]
    assert len(entries(client, f"?since={T0 + 30}")) == 3
    assert len(entries(client, "?since=2026-01-01T00:00:30%2B00:00")) == 3
    page = client.get(f"{API}?limit=2").get_json()
    assert page["total"] == 4 and page["next"] == 2 and len(page["items"]) == 2
    assert client.get(f"{API}?limit=2&offset=2").get_json()["next"] is None


def test_clear(client, rest):
    rest.webhook("server.time")
    rest.webhook("server.time")
    assert client.delete(API).get_json() == {"deleted": 2}
    assert client.get(API).get_json()["total"] == 0
    assert client.get(f"{API}/1").status_code == 404


def test_cap_keeps_the_newest(settings, clock):
    app = create_app(settings.with_overrides(journal_max=5, rate_limit="off"), clock=clock)
    client = app.test_client()
    for number in range(12):
        client.get(f"/rest/1/devtoken/server.time?n={number}")
    journal = client.get(API).get_json()
    assert journal["total"] == 5
    assert [e["params"]["n"] for e in journal["items"]] == ["11", "10", "9", "8", "7"]


def test_journal_off(settings, clock):
    app = create_app(settings.with_overrides(journal_max=0), clock=clock)
    client = app.test_client()
    client.get("/rest/1/devtoken/server.time")
    assert client.get(API).get_json()["total"] == 0


@pytest.mark.parametrize("query", ["status=abc", "status=42", "user=x", "since=soon",
                                   "limit=5000", "page=2", "request_id=" + "r" * 10001])
def test_bad_filters(client, query):
    reply = client.get(f"{API}?{query}")
    assert reply.status_code == 400
    assert reply.get_json()["error_description"].startswith(query.split("=")[0] + ":")


@pytest.mark.parametrize("value", ["' OR '1'='1", "%", "_", "a\x00b", "x" * 9000, ";--"])
def test_hostile_values(client, rest, value):
    rest.webhook("server.time")
    for name in ("method", "error", "request_id"):
        reply = client.get(API, query_string={name: value})
        assert reply.status_code in (200, 400)
        if reply.status_code == 200:
            assert reply.get_json()["total"] == 0
    assert client.get(API).get_json()["total"] == 1
    assert client.get(f"{API}/{value[:20]}").status_code in (404,)
