"""Nobody gets in: bad credentials never reach a handler, secrets are compared in constant time,
one portal's credentials never touch another portal's data."""

from __future__ import annotations

import hmac
from dataclasses import replace

import pytest
from b24emu.store import portals as portal_store

ORIGINAL_COMPARE = hmac.compare_digest

ACME = {"name": "acme", "domain": "acme.localhost",
        "users": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}],
        "webhooks": [{"user_id": 1, "code": "acmetoken", "scopes": ["im"]}],
        "apps": [{"client_id": "acme.app", "client_secret": "acmesecret", "scopes": ["im"],
                  "tokens": [{"access_token": "acmeaccesstoken", "user_id": 1,
                              "expires_at": "2099-01-01T00:00:00+00:00"}]}]}


@pytest.fixture
def spy(emulator, monkeypatch):
    """Replace personal.add's handler with one that records that it ran."""
    calls = []
    entry = emulator.registry.get("im.notify.personal.add")
    monkeypatch.setitem(emulator.registry._methods, entry.name,
                        replace(entry, handler=lambda call: calls.append(call) or 1))
    return calls


@pytest.mark.parametrize("url, body, code", [
    ("/rest/1/wrongcode/im.notify.personal.add", {}, "INVALID_CREDENTIALS"),
    ("/rest/3/inactivetoken/im.notify.personal.add", {}, "authorization_error"),
    ("/rest/2/noimtoken/im.notify.personal.add", {}, "insufficient_scope"),
    ("/rest/im.notify.personal.add", {"auth": "nosuchtoken"}, "invalid_token"),
    ("/rest/im.notify.personal.add", {"auth": "expiredaccesstoken"}, "expired_token"),
    ("/rest/im.notify.personal.add", {}, "NO_AUTH_FOUND"),
    ("/rest/batch", {"auth": "nosuchtoken", "cmd": {"a": "im.notify.personal.add?USER_ID=2"}},
     "invalid_token"),
])
def test_bad_credentials_never_reach_a_handler(client, spy, url, body, code):
    response = client.post(url, json={"USER_ID": 2, "MESSAGE": "x", **body})
    assert (response.status_code, response.get_json()["error"]) == (401, code)
    assert spy == []


def test_out_of_scope_batch_commands_never_reach_a_handler(client, spy):
    body = client.post("/rest/2/noimtoken/batch", json={
        "cmd": {"a": "im.notify.personal.add?USER_ID=1&MESSAGE=x"}}).get_json()["result"]
    assert body["result_error"]["a"]["error"] == "insufficient_scope"
    assert spy == []


def test_good_credentials_do_reach_it(rest, spy):
    rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x"})
    assert len(spy) == 1


@pytest.fixture
def compare_calls(monkeypatch):
    """Count hmac.compare_digest calls made by the credential and control-token checks."""
    calls = []

    def counting(a, b):
        calls.append((a, b))
        return ORIGINAL_COMPARE(a, b)

    monkeypatch.setattr(portal_store.hmac, "compare_digest", counting)
    return calls


def test_webhook_codes_and_tokens_are_compared_in_constant_time(client, compare_calls):
    client.post("/rest/1/devtoken/server.time")
    # every webhook code of user 1 is compared, the right one included: no early exit
    assert sorted(compare_calls) == [(b"abc123token", b"devtoken"), (b"devtoken", b"devtoken")]
    compare_calls.clear()
    client.post("/rest/server.time", json={"auth": "devaccesstoken"})
    assert compare_calls, "the OAuth token lookup must end with compare_digest"


def test_the_control_token_is_compared_in_constant_time(settings, clock, monkeypatch):
    from b24emu import create_app
    from b24emu.control import access

    seen = []
    monkeypatch.setattr(access.hmac, "compare_digest",
                        lambda a, b: seen.append(1) or ORIGINAL_COMPARE(a, b))
    client = create_app(replace(settings, control_token="s3cret"), clock=clock).test_client()
    assert client.get("/_emulator/clock", headers={"Authorization": "Bearer nope"}).status_code \
        == 401
    assert client.get("/_emulator/clock",
                      headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert len(seen) == 2


@pytest.fixture
def acme(client):
    assert client.post("/_emulator/seed", json=ACME).status_code == 200
    return {"Host": "acme.localhost"}


def test_one_portals_credentials_never_reach_anothers_data(client, rest, acme, emulator):
    mine = rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "default's"})
    # acme's webhook and token on the default portal's host: unknown there
    for url, body in [("/rest/1/acmetoken/im.notify.delete", {"ID": mine}),
                      ("/rest/im.notify.delete", {"ID": mine, "auth": "acmeaccesstoken"})]:
        response = client.post(url, json=body)
        assert response.status_code == 401
    # the default portal's credentials on acme's host: unknown there too
    for url, body in [("/rest/1/devtoken/im.notify.personal.add", {}),
                      ("/rest/im.notify.personal.add", {"auth": "devaccesstoken"})]:
        response = client.post(url, json={"USER_ID": 2, "MESSAGE": "x", **body}, headers=acme)
        assert response.status_code == 401
    # acme's own calls act on acme only, even with the same ids and tags
    theirs = client.post("/rest/1/acmetoken/im.notify.personal.add", headers=acme,
                         json={"USER_ID": 2, "MESSAGE": "acme's", "TAG": "t"}).get_json()
    deleted = client.post("/rest/1/acmetoken/im.notify.delete", headers=acme,
                          json={"ID": mine}).get_json()
    assert deleted["result"] is False  # not acme user 1's notification: nothing deleted
    assert [row["message"] for row in emulator.notifications.for_recipient("default", 2)] == [
        "default's"]
    assert [row["id"] for row in emulator.notifications.for_recipient("acme", 2)] == [
        theirs["result"]]
