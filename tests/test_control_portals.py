"""Portals through the control API: listing, seeding, reset, and two portals side by side."""

from __future__ import annotations

import copy

import pytest

ACME = {
    "name": "acme",
    "domain": "acme.localhost",
    "timezone": "Europe/Berlin",
    "users": [
        {"id": 1, "login": "boss", "name": "Acme", "last_name": "Boss", "admin": True},
        {"id": 7, "login": "dev", "name": "Dee", "last_name": "Veloper"},
    ],
    "webhooks": [{"user_id": 1, "code": "acmetoken", "scopes": ["im"]}],
    "apps": [{"client_id": "acme.app", "client_secret": "s", "name": "Acme App",
              "scopes": ["im"],
              "tokens": [{"access_token": "acmeaccesstoken", "user_id": 1,
                          "expires_at": "2099-01-01T00:00:00+00:00"}]}],
}
ON_ACME = {"Host": "acme.localhost"}
HI = {"USER_ID": 7, "MESSAGE": "hello acme"}


@pytest.fixture
def acme(client):
    reply = client.post("/_emulator/seed", json=ACME)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def acme_call(client, method="im.notify.personal.add", params=None, code="acmetoken", user=1):
    return client.post(f"/rest/{user}/{code}/{method}.json", json=params or HI, headers=ON_ACME)


def test_portals_lists_users_webhooks_and_apps(client):
    (portal,) = client.get("/_emulator/portals").get_json()["items"]
    assert portal["name"] == "default" and portal["domain"] == "localhost"
    assert portal["users"][0] == {"id": 1, "login": "admin", "name": "Anna",
                                  "last_name": "Admin", "active": True, "admin": True}
    assert portal["users"][2]["active"] is False
    assert portal["webhooks"][0] == {"id": 1, "user_id": 1,
                                     "scopes": ["im", "user", "user_basic"],
                                     "url": "http://localhost/rest/1/devtoken/"}
    assert portal["apps"][0] == {"client_id": "disabled.app", "name": "", "scopes": ["im"]}
    assert {app["client_id"] for app in portal["apps"]} == {
        "disabled.app", "local.emulator.app", "other.app"}
    served = client.get("/_emulator/portals", base_url="http://127.0.0.1:8080").get_json()
    assert served["items"][0]["webhooks"][0]["url"] == "http://127.0.0.1:8080/rest/1/devtoken/"


def test_seed_answers_counts_and_lists_the_portal(client, acme):
    assert acme == {"portal": "acme", "domain": "acme.localhost", "users": 2, "webhooks": 1,
                    "apps": 1}
    listed = client.get("/_emulator/portals", base_url="http://127.0.0.1:8080").get_json()
    names = [p["name"] for p in listed["items"]]
    assert names == ["acme", "default"]
    acme_portal = listed["items"][0]
    assert acme_portal["timezone"] == "Europe/Berlin"
    assert acme_portal["webhooks"][0]["url"] == "http://acme.localhost:8080/rest/1/acmetoken/"


def test_second_portal_webhooks_work_and_default_credentials_do_not(client, rest, acme):
    reply = acme_call(client)
    assert reply.status_code == 200 and isinstance(reply.get_json()["result"], int)
    refused = acme_call(client, code="devtoken")
    assert refused.status_code == 401 and refused.get_json()["error"] == "INVALID_CREDENTIALS"
    oauth = client.post("/rest/im.notify.personal.add.json",
                        json={**HI, "auth": "devaccesstoken"}, headers=ON_ACME)
    assert oauth.status_code == 401 and oauth.get_json()["error"] == "invalid_token"
    acme_oauth = client.post("/rest/im.notify.personal.add.json",
                             json={**HI, "auth": "acmeaccesstoken"}, headers=ON_ACME)
    assert acme_oauth.status_code == 200
    # and the other way round
    assert rest.webhook("server.time", code="acmetoken").status_code == 401
    assert rest.webhook("server.time").status_code == 200


def test_notifications_journal_and_faults_are_isolated(client, rest, acme):
    on_acme = acme_call(client).get_json()["result"]
    on_default = rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "home"})
    mine = client.get("/_emulator/notifications").get_json()["items"]
    assert [n["id"] for n in mine] == [on_default]
    theirs = client.get("/_emulator/notifications?portal=acme").get_json()["items"]
    assert [n["id"] for n in theirs] == [on_acme] and theirs[0]["portal"] == "acme"
    assert theirs[0]["created"].endswith("+00:00")  # the emulator's zone (B24EMU_TIMEZONE)
    by_host = client.get("/_emulator/notifications", headers=ON_ACME).get_json()["items"]
    assert by_host == theirs
    assert client.get(f"/_emulator/notifications/{on_acme}").status_code == 404
    assert client.get(f"/_emulator/notifications/{on_default}?portal=acme").status_code == 404
    assert client.delete(f"/_emulator/notifications/{on_acme}").status_code == 404
    # journal
    default_journal = client.get("/_emulator/journal").get_json()["items"]
    acme_journal = client.get("/_emulator/journal?portal=acme").get_json()["items"]
    assert [e["path"] for e in default_journal] == [
        "/rest/1/dev***/im.notify.personal.add.json"]
    assert [e["path"] for e in acme_journal] == ["/rest/1/acm***/im.notify.personal.add.json"]
    assert theirs[0]["request_id"] == acme_journal[0]["request_id"]
    # faults, both ways
    client.post("/_emulator/faults?portal=acme", json={"method": "*", "error": "OVERLOAD_LIMIT"})
    assert rest.webhook("server.time").status_code == 200
    assert acme_call(client).status_code == 503
    assert client.get("/_emulator/faults").get_json() == {"items": []}
    client.delete("/_emulator/faults", headers=ON_ACME)
    client.post("/_emulator/faults", json={"method": "*", "error": "OVERLOAD_LIMIT"})
    assert acme_call(client).status_code == 200
    assert rest.webhook("server.time").status_code == 503
    # reset of one portal leaves the other alone
    client.post("/_emulator/reset?portal=acme", json={"scope": "data"})
    assert client.get("/_emulator/notifications/count?portal=acme").get_json() == {"count": 0}
    assert client.get("/_emulator/notifications/count").get_json() == {"count": 1}
    assert client.get("/_emulator/journal").get_json()["total"] == 3
    assert len(client.get("/_emulator/faults").get_json()["items"]) == 1


def test_seed_replaces_a_portal(client, acme):
    changed = copy.deepcopy(ACME)
    changed["webhooks"][0]["code"] = "rotated"
    assert client.post("/_emulator/seed", json=changed).status_code == 200
    assert acme_call(client).status_code == 401
    assert acme_call(client, code="rotated").status_code == 200


@pytest.mark.parametrize(("document", "message"), [
    ({"name": "x", "users": [{"id": "one"}]}, "users[0].id: Not a valid integer."),
    ({"name": "x"}, "users: Missing data for required field."),
    ({"name": "x", "users": [], "webhooks": [{"user_id": 5, "code": "c", "scopes": []}]},
     "webhooks[0].user_id: no such user"),
    ({"name": "Bad Name!", "users": []}, "name: String does not match expected pattern."),
    ([1, 2], "fixture: the top level must be a JSON object"),
    ({"name": "x", "users": [], "surprise": 1}, "surprise: Unknown field."),
])
def test_bad_fixtures_are_400(client, document, message):
    reply = client.post("/_emulator/seed", json=document)
    assert reply.status_code == 400
    body = reply.get_json()
    assert body["error"] == "invalid_fixture" and message in body["error_description"]
    assert [p["name"] for p in client.get("/_emulator/portals").get_json()["items"]] == [
        "default"]


def test_seed_needs_a_json_body(client):
    for data in (b"", b"{", b"null"):
        reply = client.post("/_emulator/seed", data=data, content_type="application/json")
        assert reply.status_code == 400 and reply.get_json()["error"] == "invalid_fixture"


def test_a_domain_belongs_to_one_portal(client, acme):
    other = {**ACME, "name": "other"}
    reply = client.post("/_emulator/seed", json=other)
    assert reply.status_code == 400
    assert reply.get_json()["error_description"] == (
        "domain: 'acme.localhost' is the domain of portal 'acme'")


def test_reset_data_keeps_faults_and_people(client, rest):
    rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x"})
    client.post("/_emulator/faults", json={"method": "user.current", "error": "X"})
    reply = client.post("/_emulator/reset", json={"scope": "data"})
    assert reply.get_json() == {"portal": "default", "scope": "data", "reloaded": False,
                                "removed": {"notifications": 1, "journal": 1,
                                            "event_deliveries": 0, "event_offline": 0}}
    assert len(client.get("/_emulator/faults").get_json()["items"]) == 1


def test_reset_all_restores_the_fixture_and_limits(client, rest, emulator):
    client.post("/_emulator/clock", json={"freeze": True})
    with emulator.database.write() as db:  # the portal drifted from its fixture
        db.execute("DELETE FROM webhooks WHERE portal = 'default' AND code = 'devtoken'")
    assert rest.webhook("server.time").status_code == 401
    for _ in range(49):
        rest.webhook("server.time")
    assert rest.webhook("server.time").status_code == 503  # the bucket refuses before auth
    client.post("/_emulator/faults", json={"method": "user.current", "error": "X"})
    reply = client.post("/_emulator/reset")
    body = reply.get_json()
    assert body["portal"] == "default" and body["scope"] == "all" and body["reloaded"] is True
    assert body["removed"]["faults"] == 1 and body["removed"]["rate_buckets"] == 1
    assert body["removed"]["journal"] == 51
    assert rest.webhook("server.time").status_code == 200  # webhook back, bucket empty
    assert client.get("/_emulator/faults").get_json() == {"items": []}


def test_reset_all_reloads_the_last_seeded_document(client, rest, acme, emulator):
    with emulator.database.write() as db:
        db.execute("DELETE FROM users WHERE portal = 'acme'")
        db.execute("DELETE FROM tokens WHERE portal = 'acme'")
    assert acme_call(client).status_code == 401
    assert client.post("/_emulator/reset?portal=acme").get_json()["reloaded"] is True
    assert acme_call(client).status_code == 200
    oauth = client.post("/rest/server.time.json", json={"auth": "acmeaccesstoken"},
                        headers=ON_ACME)
    assert oauth.status_code == 200
    # the default portal re-seeded through the API comes back as seeded, not from the file
    document = {"name": "default", "users": [{"id": 1, "login": "solo"}],
                "webhooks": [{"user_id": 1, "code": "fresh", "scopes": ["im"]}]}
    client.post("/_emulator/seed", json=document)
    client.post("/_emulator/reset")
    assert rest.webhook("server.time", code="devtoken").status_code == 401
    assert rest.webhook("server.time", code="fresh").status_code == 200


@pytest.mark.parametrize("body", [{"scope": "everything"}, {"scope": 1}, {"what": "all"}])
def test_bad_reset_bodies(client, rest, body):
    rest.webhook("server.time")
    reply = client.post("/_emulator/reset", json=body)
    assert reply.status_code == 400 and reply.get_json()["error"] == "invalid_parameter"
    assert client.get("/_emulator/journal").get_json()["total"] == 1


def test_unknown_portal_everywhere(client):
    for method, path in (("get", "/_emulator/notifications"), ("get", "/_emulator/journal"),
                         ("get", "/_emulator/faults"), ("post", "/_emulator/reset"),
                         ("delete", "/_emulator/journal"), ("get", "/_emulator/journal/1"),
                         ("get", "/_emulator/notifications/count")):
        reply = getattr(client, method)(f"{path}?portal=ghost")
        assert reply.status_code == 404, path
        assert reply.get_json()["error"] == "portal_not_found"


def test_lookups_of_unknown_users_and_webhooks_do_not_grow_the_cache(emulator):
    """Clients may name any user id: only rows that exist are remembered, so memory stays
    bounded under an hour of calls naming ids that are not there."""
    for user_id in range(1000, 1500):
        assert emulator.portals.user("default", user_id) is None
        assert emulator.portals.webhook("default", user_id, "nocode") is None
    assert len(emulator.portals._cache) <= 10
    assert emulator.portals.user("default", 1) is not None
