"""The event methods answer as a portal's REST module does (api-reference/events/, Api\\Event).

Checked through the WSGI test client; delivery over real HTTP is in test_events_delivery.py.
"""

from __future__ import annotations

import json

import pytest
from b24emu import create_app
from b24emu.events import fire
from b24emu.events.catalog import EVENTS_BY_SCOPE
from b24emu.events.store import message_id
from b24emu.methods import REGISTRY

from tests.conftest import T0

PORTAL = {
    "users": [{"id": 1, "name": "Ada", "admin": True}, {"id": 2, "name": "Bo"},
              {"id": 3, "name": "Cy"}],
    "webhooks": [{"user_id": 1, "code": "hooktoken", "scopes": ["crm", "im"]}],
    "apps": [
        {"client_id": "local.crm.app", "client_secret": "s", "scopes": ["crm", "im"],
         "application_token": "crmapptoken",
         "tokens": [{"access_token": "admintoken", "user_id": 1,
                     "expires_at": "2099-01-01T00:00:00+00:00"},
                    {"access_token": "usertoken", "user_id": 2,
                     "expires_at": "2099-01-01T00:00:00+00:00"}]},
        {"client_id": "other.app", "client_secret": "s", "scopes": ["im"],
         "tokens": [{"access_token": "othertoken", "user_id": 1,
                     "expires_at": "2099-01-01T00:00:00+00:00"}]},
        {"client_id": "basic.app", "client_secret": "s", "scopes": ["user_basic"],
         "tokens": [{"access_token": "basictoken", "user_id": 1,
                     "expires_at": "2099-01-01T00:00:00+00:00"}]},
    ],
}
HANDLER = "http://127.0.0.1:9/handler"
EVENT_METHODS = ["event.bind", "event.unbind", "event.get", "events", "event.offline.get",
                 "event.offline.clear", "event.offline.error", "event.offline.list"]


@pytest.fixture
def app(settings, clock, tmp_path):
    fixture = tmp_path / "portal.json"
    fixture.write_text(json.dumps(PORTAL))
    app = create_app(settings.with_overrides(fixtures=str(fixture)), clock=clock)
    app.extensions["b24emu"].deliveries.wake = lambda: None  # queue only; nothing is sent here
    return app


@pytest.fixture
def call(client):
    def call(method, token="admintoken", **params):
        reply = client.post(f"/rest/{method}.json", json={"auth": token, **params})
        return reply.status_code, reply.get_json()
    return call


def result(call, method, token="admintoken", **params):
    status, body = call(method, token, **params)
    assert status == 200, body
    return body["result"]


def error(call, method, token="admintoken", **params):
    status, body = call(method, token, **params)
    return status, body["error"], body["error_description"]


# --- who may call ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", EVENT_METHODS)
def test_a_webhook_gets_wrong_auth_type(client, method):
    reply = client.post(f"/rest/1/hooktoken/{method}.json",
                        json={"event": "ONCRMDEALADD", "handler": HANDLER})
    assert reply.status_code == 403
    assert reply.get_json() == {"error": "WRONG_AUTH_TYPE",
                                "error_description": "Current authorization type is denied "
                                                     "for this method"}


def test_every_event_method_is_registered_with_the_basic_scope():
    for name in EVENT_METHODS:
        assert REGISTRY.get(name).scope == "_global"


@pytest.mark.parametrize("method", ["event.offline.get", "event.offline.clear",
                                    "event.offline.error", "event.offline.list"])
def test_the_offline_queue_needs_an_administrator(call, method):
    assert error(call, method, "usertoken", process_id="x", message_id=[]) == (
        403, "ACCESS_DENIED", "Access denied!")


# --- event.bind ------------------------------------------------------------------------------

def test_bind_get_and_unbind(call, emulator):
    assert result(call, "event.bind", event="onCrmDealAdd", handler=HANDLER) is True
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER, auth_type=2) is True
    assert result(call, "event.bind", event="ONCRMDEALUPDATE", event_type="offline",
                  auth_connector="sync") is True
    assert result(call, "event.get") == [
        {"event": "ONCRMDEALADD", "handler": HANDLER, "auth_type": "0", "offline": 0},
        {"event": "ONCRMDEALADD", "handler": HANDLER, "auth_type": "2", "offline": 0},
        {"event": "ONCRMDEALUPDATE", "connector_id": "sync", "offline": 1}]
    assert result(call, "event.get", "othertoken") == []  # another app's handlers are its own
    # auth_type=0 removes only the handler bound without a user
    assert result(call, "event.unbind", event="ONCRMDEALADD", handler=HANDLER,
                  auth_type=0) == {"count": 1}
    assert result(call, "event.unbind", event="ONCRMDEALUPDATE", event_type="offline",
                  auth_connector="other") == {"count": 0}
    assert result(call, "event.unbind", event="ONCRMDEALUPDATE", event_type="offline",
                  auth_connector="sync") == {"count": 1}
    assert result(call, "event.unbind", event="ONCRMDEALADD", handler=HANDLER) == {"count": 1}
    assert result(call, "event.get") == []


def test_bind_errors_in_the_portals_order(call):
    assert error(call, "event.bind", handler=HANDLER) == (
        400, "ERROR_ARGUMENT", "Argument 'EVENT' is null or empty")
    status, body = call("event.bind", handler=HANDLER)
    assert body["argument"] == "EVENT"
    assert error(call, "event.bind", event="ONCRMDEALADD") == (
        400, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty")
    assert error(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER,
                 event_type="sometimes") == (
        400, "ERROR_ARGUMENT", "Value must be one of {online|offline}")
    assert error(call, "event.bind", event="ONCRMDEALADD", handler="ftp://127.0.0.1/x") == (
        400, "ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol")
    assert error(call, "event.bind", event="ONCRMDEALADD", handler="http:///x") == (
        400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
    assert error(call, "event.bind", event="ONNOSUCHEVENT", handler=HANDLER) == (
        400, "ERROR_EVENT_NOT_FOUND", "Event not found")
    # ONTASKADD exists, but the app has no `task` scope
    assert error(call, "event.bind", event="ONTASKADD", handler=HANDLER)[1] == (
        "ERROR_EVENT_NOT_FOUND")
    assert error(call, "event.bind", event="ONOFFLINEEVENT", event_type="offline") == (
        400, "ERROR_ARGUMENT", "Offline event cannot be registered for this event.")
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER) is True
    assert error(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER) == (
        400, "ERROR_CORE", "Unable to set event handler: Handler already binded")


def test_a_regular_user_binds_only_for_themselves_and_never_offline(call):
    assert error(call, "event.bind", "usertoken", event="ONCRMDEALADD", handler=HANDLER,
                 auth_type=1) == (403, "ACCESS_DENIED", "Access denied! Event binding with "
                                  "AUTH_TYPE requires administrator access rights")
    assert error(call, "event.bind", "usertoken", event="ONCRMDEALADD",
                 event_type="offline") == (403, "ACCESS_DENIED", "Access denied! Offline "
                                           "events binding requires administrator access rights")
    assert result(call, "event.bind", "usertoken", event="ONCRMDEALADD", handler=HANDLER)
    # their own id passes the check; it is the handler just bound (bound for user 2)
    assert error(call, "event.bind", "usertoken", event="ONCRMDEALADD", handler=HANDLER,
                 auth_type=2) == (400, "ERROR_CORE",
                                  "Unable to set event handler: Handler already binded")
    assert result(call, "event.get", "usertoken") == [
        {"event": "ONCRMDEALADD", "handler": HANDLER, "auth_type": "2", "offline": 0}]
    assert error(call, "event.unbind", "usertoken", event="ONCRMDEALADD",
                 event_type="offline") == (403, "ACCESS_DENIED", "Access denied! Offline "
                                           "events unbinding requires administrator access "
                                           "rights")
    # the portal compares auth_type with !== to the user's id: only a JSON number can match
    assert error(call, "event.unbind", "usertoken", event="ONCRMDEALADD", handler=HANDLER,
                 auth_type="2") == (403, "ACCESS_DENIED", "Access denied! Event unbinding "
                                    "with AUTH_TYPE requires administrator access rights")
    assert result(call, "event.unbind", "usertoken", event="ONCRMDEALADD", handler=HANDLER,
                  auth_type=2) == {"count": 1}


def test_handler_hosts_are_loopback_or_allowed(call, settings, clock, tmp_path):
    assert error(call, "event.bind", event="ONCRMDEALADD", handler="https://example.com/h") == (
        400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL: the emulator delivers events only "
        "to loopback addresses and to the hosts in B24EMU_EVENT_HOSTS, not to 'example.com'")
    for url in ("http://10.0.0.1/h", "http://169.254.169.254/latest", "http://[fe80::1]/h",
                "http://127.0.0.1.nip.io/h", "http://localhost.example.com/h"):
        assert error(call, "event.bind", event="ONCRMDEALADD", handler=url)[1] == (
            "ERROR_WRONG_HANDLER_URL"), url
    assert error(call, "event.bind", event="ONCRMDEALADD",
                 handler="http://127.0.0.1/" + "a" * 2048) == (
        400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL: longer than 2048 characters")
    for url in ("http://localhost:8000/h", "http://127.0.0.2/h", "https://[::1]:9/h"):
        assert result(call, "event.bind", event="ONCRMDEALADD", handler=url) is True
    fixture = tmp_path / "portal.json"
    allowed = create_app(settings.with_overrides(fixtures=str(fixture),
                                                 event_hosts="hooks.example.com, Other.Test"),
                         clock=clock).test_client()
    for url in ("https://hooks.example.com/h", "http://other.test:81/h"):
        reply = allowed.post("/rest/event.bind.json",
                             json={"auth": "admintoken", "event": "ONCRMDEALADD", "handler": url})
        assert reply.get_json()["result"] is True, url


@pytest.mark.parametrize("url", [
    "http://evil.example\\@127.0.0.1/h",  # requests: evil.example; urlsplit: 127.0.0.1
    "http://evil.example%5c@127.0.0.1/h",
    "http://user:pass@127.0.0.1/h",
    "http://127.0.0.1@evil.example/h",
    "http://127.0.0.1\t/h",
])
def test_handler_urls_with_userinfo_or_a_backslash_in_the_host_are_refused(call, url):
    assert error(call, "event.bind", event="ONCRMDEALADD", handler=url) == (
        400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL: the emulator refuses a user name,"
        " password, backslash, space or control character in a handler's address")
    assert result(call, "event.get") == []


def sent_bodies(emulator, monkeypatch) -> list[dict]:
    """Stand in for the HTTP POST of the delivery worker: records (url, parsed body), 200."""
    from b24emu.rest.params import parse_php_query

    sent: list[dict] = []

    def post(url, body):
        sent.append({"url": url, **parse_php_query(body.encode())})
        return 200, "ok", None

    monkeypatch.setattr(emulator.deliveries, "_post", post)
    return sent


def send_next(emulator) -> dict:
    """Claim the oldest queued delivery and send it, as a delivery thread does."""
    delivery = emulator.events.claim("test-worker", T0)
    assert delivery is not None
    emulator.deliveries.deliver(delivery)
    return emulator.events.delivery("default", delivery["id"])


@pytest.mark.parametrize("url", ["http://evil.example\\@127.0.0.1:9/h",
                                 "http://evil.example%5c@127.0.0.1:9/h",
                                 "http://user:secret@127.0.0.1:9/h"])
def test_a_handler_url_bound_before_the_check_is_refused_at_delivery(call, emulator,
                                                                    monkeypatch, url):
    sent = sent_bodies(emulator, monkeypatch)
    emulator.events.bind("default", "local.crm.app", "ONCRMDEALADD", url, 0, "", {}, T0)
    fire(emulator, "default", "ONCRMDEALADD", {"FIELDS": {"ID": 1}}, 1)
    delivery = send_next(emulator)
    assert sent == []  # never connected
    assert delivery["status"] == "failed"
    assert delivery["error"].startswith("Wrong handler URL: the emulator refuses a user name")
    [entry] = [e for e in emulator.control.journal("default") if e["auth_type"] == "event"]
    assert "secret" not in entry["path"] and "user:" not in entry["path"]


def test_options_are_kept_only_where_the_event_allows_them(call, emulator):
    assert result(call, "event.bind", event="ONOFFLINEEVENT", handler=HANDLER,
                  options={"minTimeout": "30", "other": 1}) is True
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER,
                  options={"minTimeout": 30}) is True
    options = {h.event_name: h.options for h in emulator.events.handlers("default")}
    assert options == {"ONOFFLINEEVENT": {"minTimeout": 30}, "ONCRMDEALADD": {}}


def test_odd_parameter_types_are_bitrix_errors_not_500(call):
    assert call("event.bind", event=["ONCRMDEALADD"], handler=HANDLER)[0] == 400
    assert call("event.bind", event="ONCRMDEALADD", handler={"a": 1})[0] == 400
    assert call("event.bind", event="ONCRMDEALADD", handler="http://127.0.0.1:99999/")[0] == 400
    assert call("event.offline.get", filter="x", order=[1], limit="abc")[0] == 400
    status, body = call("event.offline.list", filter={"=ID": {"a": 1}, "?": 1}, order="x")
    assert (status, body["error"]) == (400, "ERROR_ARGUMENT")  # sanitizeFilter: no "?" op


# --- events -----------------------------------------------------------------------------------

def test_events_lists_the_callers_scopes_and_the_basic_ones(call):
    basic = list(EVENTS_BY_SCOPE["_global"])
    assert result(call, "events") == basic + list(EVENTS_BY_SCOPE["crm"])
    assert result(call, "events", SCOPE="user") == ["ONUSERADD"]
    assert result(call, "events", SCOPE="") == basic
    assert result(call, "events", SCOPE="nosuchscope") == []
    full = result(call, "events", FULL=True)
    assert len(full) == 111 and full[:2] == ["ONAPPUNINSTALL", "ONAPPINSTALL"]
    assert full[-1] == "ONTASKCOMMENTDELETE"
    assert result(call, "events", SCOPE="task", FULL=True) == list(EVENTS_BY_SCOPE["task"])


def test_onuseradd_belongs_to_the_user_basic_and_user_brief_scopes_too(call):
    assert result(call, "events", SCOPE="user_basic") == ["ONUSERADD"]
    assert result(call, "events", SCOPE="user_brief") == ["ONUSERADD"]
    assert result(call, "events", "basictoken").count("ONUSERADD") == 1
    assert result(call, "events", FULL=True).count("ONUSERADD") == 1
    assert result(call, "event.bind", "basictoken", event="ONUSERADD", handler=HANDLER) is True
    assert error(call, "event.bind", "basictoken", event="ONCRMDEALADD", handler=HANDLER)[1] == (
        "ERROR_EVENT_NOT_FOUND")


# --- the offline queue ------------------------------------------------------------------------

def offline_setup(call, emulator, clock):
    assert result(call, "event.bind", event="ONCRMDEALUPDATE", event_type="offline")
    fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}}, 2)
    clock.advance(10)
    fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 6}}, 2)
    clock.advance(10)
    # the same deal again: its record is updated (one record per object), not added
    fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}}, 1)


def test_offline_records_keep_the_latest_state_of_each_object(call, emulator, clock):
    offline_setup(call, emulator, clock)
    listed = result(call, "event.offline.list")
    rows = [(r["ID"], r["EVENT_DATA"], r["EVENT_ADDITIONAL"], r["TIMESTAMP_X"]) for r in listed]
    assert rows == [
        ("1", {"FIELDS": {"ID": 5}}, {"user_id": 1}, "2026-01-01T00:00:20+00:00"),
        ("2", {"FIELDS": {"ID": 6}}, {"user_id": 2}, "2026-01-01T00:00:10+00:00")]
    assert listed[0]["MESSAGE_ID"] == message_id("ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}})
    assert len(listed[0]["MESSAGE_ID"]) == 32
    assert (listed[0]["PROCESS_ID"], listed[0]["ERROR"]) == ("", "0")
    # the other app sees nothing of it
    assert result(call, "event.offline.list", "othertoken") == []


def test_offline_get_with_process_id_round_trip(call, emulator, clock):
    offline_setup(call, emulator, clock)
    # default order TIMESTAMP_X ASC: deal 6 (t=10) before deal 5 (t=20)
    first = result(call, "event.offline.get", clear=0, limit=1)
    process = first["process_id"]
    assert len(process) == 32 and [e["EVENT_DATA"] for e in first["events"]] == [
        {"FIELDS": {"ID": 6}}]
    assert set(first["events"][0]) == {"ID", "TIMESTAMP_X", "EVENT_NAME", "EVENT_DATA",
                                       "EVENT_ADDITIONAL", "MESSAGE_ID"}
    # reserved records are not handed out again...
    second = result(call, "event.offline.get", clear=0)
    assert [e["ID"] for e in second["events"]] == ["1"] and second["process_id"] != process
    assert result(call, "event.offline.get", clear=0)["events"] == []
    # ...but the same process gets its own records back, with its process_id
    again = result(call, "event.offline.get", clear=0, process_id=process)
    assert again == first
    listed = {r["ID"]: r["PROCESS_ID"] for r in result(call, "event.offline.list")}
    assert listed == {"1": second["process_id"], "2": process}
    # event.offline.clear deletes only the process's records (here: by id)
    assert result(call, "event.offline.clear", process_id=process, id=[1]) is True
    assert len(result(call, "event.offline.list")) == 2  # id 1 belongs to the other process
    assert result(call, "event.offline.clear", process_id=process) is True
    assert [r["ID"] for r in result(call, "event.offline.list")] == ["1"]
    # clear=1 (the default) returns and deletes at once, process_id null
    fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 7}}, 1)
    taken = result(call, "event.offline.get")
    assert taken["process_id"] is None and [e["EVENT_DATA"]["FIELDS"]["ID"] for e in
                                            taken["events"]] == [7]
    assert [r["ID"] for r in result(call, "event.offline.list")] == ["1"]


def test_offline_error_returns_records_as_errors(call, emulator, clock):
    offline_setup(call, emulator, clock)
    got = result(call, "event.offline.get", clear=0)
    ids = [e["MESSAGE_ID"] for e in got["events"]]
    assert result(call, "event.offline.error", process_id=got["process_id"],
                  message_id=ids[:1]) is True
    assert result(call, "event.offline.get", clear=0)["events"] == []
    errors = result(call, "event.offline.get", clear=0, error=1)
    assert [e["MESSAGE_ID"] for e in errors["events"]] == ids[:1]
    assert {r["MESSAGE_ID"]: r["ERROR"] for r in result(call, "event.offline.list",
                                                          filter={"ERROR": 1})} == {
        ids[0]: "1"}


def test_offline_filters_order_and_paging(call, emulator, clock):
    offline_setup(call, emulator, clock)
    assert [r["ID"] for r in result(call, "event.offline.list", order={"ID": "DESC"})] == [
        "2", "1"]
    assert [r["ID"] for r in result(call, "event.offline.list", filter={">ID": 1})] == ["2"]
    assert [r["ID"] for r in result(call, "event.offline.list",
                                    filter={">=TIMESTAMP_X": "2026-01-01T00:00:15+00:00"})] == ["1"]
    assert [r["ID"] for r in result(call, "event.offline.list",
                                    filter={"=EVENT_NAME": "ONCRMDEALADD"})] == []
    for index in range(60):
        fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 100 + index}}, 1)
    status, body = call("event.offline.list")
    assert (len(body["result"]), body["total"], body["next"]) == (50, 62, 50)
    status, body = call("event.offline.list", start=50)
    assert (len(body["result"]), body["total"], "next" in body) == (12, 62, False)
    got = result(call, "event.offline.get", clear=0, limit=60)
    assert len(got["events"]) == 60


def test_offline_argument_errors(call):
    assert error(call, "event.offline.get", limit=0) == (
        400, "ERROR_ARGUMENT", "Value must be positive integer")
    assert error(call, "event.offline.clear") == (
        400, "ERROR_ARGUMENT", "Argument 'PROCESS_ID' is null or empty")
    assert error(call, "event.offline.clear", process_id="p", message_id="abc") == (
        400, "ERROR_ARGUMENT", "Value must be array of MESSAGE_ID values")
    assert error(call, "event.offline.clear", process_id="p", message_id=["short"]) == (
        400, "ERROR_ARGUMENT", "Value must be array of MESSAGE_ID values")
    assert error(call, "event.offline.clear", process_id="p", id=[0]) == (
        400, "ERROR_ARGUMENT", "Value must be array of integers")
    assert error(call, "event.offline.clear", process_id="p", id="1") == (
        400, "ERROR_ARGUMENT", "Value must be array of integers")
    assert error(call, "event.offline.error", process_id="p") == (
        400, "ERROR_ARGUMENT", "Value must be array of MESSAGE_ID values")
    assert error(call, "event.offline.error", message_id=[]) == (
        400, "ERROR_ARGUMENT", "Argument 'PROCESS_ID' is null or empty")


def test_auth_connector_queues_are_separate_and_skip_their_own_changes(call, emulator):
    assert result(call, "event.bind", event="ONCRMDEALUPDATE", event_type="offline")
    assert result(call, "event.bind", event="ONCRMDEALUPDATE", event_type="offline",
                  auth_connector="sync")
    fired = fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 1}}, 1,
                 auth_connector="sync")  # the sync process changed the deal itself
    assert fired["offline"] == 1
    assert len(result(call, "event.offline.list")) == 1
    assert result(call, "event.offline.list", auth_connector="sync") == []
    fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 2}}, 1)
    assert len(result(call, "event.offline.list", auth_connector="sync")) == 1
    got = result(call, "event.offline.get", auth_connector="sync")
    assert [e["EVENT_DATA"] for e in got["events"]] == [{"FIELDS": {"ID": 2}}]


def test_firing_reaches_only_active_apps_and_matching_events(call, emulator):
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER)
    assert result(call, "event.bind", event="ONCRMDEALUPDATE", handler=HANDLER)
    assert len(fire(emulator, "default", "oncrmdealadd", {"FIELDS": {"ID": 1}})[
        "deliveries"]) == 1
    emulator.portals.set_app_active("default", "local.crm.app", False)
    assert fire(emulator, "default", "ONCRMDEALADD", {})["deliveries"] == []
    rows, total = emulator.events.deliveries("default")
    assert total == 1 and rows[0]["status"] == "queued" and rows[0]["created_at"] == T0


def test_reset_data_forgets_queues_and_reset_all_the_handlers(call, client, emulator):
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER)
    assert result(call, "event.bind", event="ONCRMDEALUPDATE", event_type="offline")
    fire(emulator, "default", "ONCRMDEALADD", {})
    fire(emulator, "default", "ONCRMDEALUPDATE", {})
    removed = client.post("/_emulator/reset", json={"scope": "data"}).get_json()["removed"]
    assert (removed["event_deliveries"], removed["event_offline"]) == (1, 1)
    assert len(result(call, "event.get")) == 2
    removed = client.post("/_emulator/reset", json={"scope": "all"}).get_json()["removed"]
    assert removed["event_handlers"] == 2 and result(call, "event.get") == []


def test_a_full_queue_records_dropped_deliveries(call, emulator, monkeypatch):
    monkeypatch.setattr("b24emu.events.store.MAX_QUEUED", 2)
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER)
    ids = [fire(emulator, "default", "ONCRMDEALADD", {"n": n})["deliveries"][0] for n in range(3)]
    rows = {row["id"]: row for row in emulator.events.deliveries("default")[0]}
    assert [rows[i]["status"] for i in ids] == ["queued", "queued", "dropped"]
    assert rows[ids[2]]["error"] == "queue full (2 waiting)"


def test_old_deliveries_and_the_tokens_they_carried_are_trimmed(call, emulator, monkeypatch):
    from b24emu.events.store import DELIVERED
    from b24emu.store.portals import token_hash

    monkeypatch.setattr("b24emu.events.store.HISTORY_KEPT", 5)
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER)
    tokens = {}
    for n in range(40):
        [delivery_id] = fire(emulator, "default", "ONCRMDEALADD", {"n": n}, 1)["deliveries"]
        issued = emulator.portals.issue_tokens("default", "local.crm.app", 1, T0, refresh=False)
        tokens[delivery_id] = issued["access_token"]
        emulator.events.finish(delivery_id, status=DELIVERED, sent_at=T0, duration=0.0,
                               http_status=200, response="ok", error=None,
                               token_hash=token_hash(issued["access_token"]))
    kept = sorted(row["id"] for row in emulator.events.deliveries("default", limit=100)[0])
    assert kept == list(range(28, 41))  # trimmed at the 32nd: the newest 5 of them stay
    assert all(emulator.portals.token("default", tokens[i]) is None for i in range(1, 28))
    assert all(emulator.portals.token("default", tokens[i]) for i in range(28, 41))
    assert emulator.portals.token("default", "admintoken") is not None


def test_dropped_deliveries_keep_no_data_and_are_trimmed(call, emulator, monkeypatch):
    monkeypatch.setattr("b24emu.events.store.MAX_QUEUED", 2)
    monkeypatch.setattr("b24emu.events.store.HISTORY_KEPT", 5)
    assert result(call, "event.bind", event="ONCRMDEALADD", handler=HANDLER)
    for n in range(300):  # nothing is sent here: two wait, the rest are dropped
        fire(emulator, "default", "ONCRMDEALADD", {"n": n, "big": "x" * 1000})
    rows, total = emulator.events.deliveries("default", limit=1000)
    assert total <= 2 + 5 + 32  # the two waiting, the history kept, at most one trim's worth
    dropped = [row for row in rows if row["status"] == "dropped"]
    assert dropped and all(row["data"] is None for row in dropped)
    assert [row["data"]["n"] for row in rows if row["status"] == "queued"] == [1, 0]


def test_trimmed_and_reset_deliveries_take_their_refresh_tokens_along(call, client, emulator,
                                                                      monkeypatch):
    monkeypatch.setattr("b24emu.events.store.HISTORY_KEPT", 5)
    sent = sent_bodies(emulator, monkeypatch)
    assert result(call, "event.bind", event="ONAPPINSTALL", handler=HANDLER)
    for n in range(40):
        fire(emulator, "default", "ONAPPINSTALL", {"n": n}, 1)
        assert send_next(emulator)["status"] == "delivered"
    pairs = [(body["auth"]["access_token"], body["auth"]["refresh_token"]) for body in sent]
    assert len(pairs) == 40
    kept = sorted(row["id"] for row in emulator.events.deliveries("default", limit=100)[0])
    assert kept == list(range(28, 41))  # trimmed at the 32nd: the newest 5 of them stay
    def alive(access, refresh):
        tokens = emulator.portals
        return (tokens.token("default", access) is not None,
                tokens.token("default", refresh, "refresh") is not None)

    assert [alive(*pair) for pair in pairs] == [(False, False)] * 27 + [(True, True)] * 13
    client.post("/_emulator/reset", json={"scope": "data"})
    assert [alive(*pair) for pair in pairs] == [(False, False)] * 40
    assert emulator.portals.token("default", "admintoken") is not None


def test_a_delivery_deleted_while_it_was_sent_leaves_no_journal_entry_or_token(
        call, client, emulator, monkeypatch):
    """The pytest plugin's restore() between two tests while a delivery is in flight."""
    sent = sent_bodies(emulator, monkeypatch)
    assert result(call, "event.bind", event="ONAPPINSTALL", handler=HANDLER)
    fire(emulator, "default", "ONAPPINSTALL", {}, 1)
    delivery = emulator.events.claim("test-worker", T0)
    client.post("/_emulator/reset", json={"scope": "data"})  # the next test starts
    emulator.deliveries.deliver(delivery)
    assert len(sent) == 1 and emulator.events.deliveries("default")[1] == 0
    assert [e for e in emulator.control.journal("default") if e["auth_type"] == "event"] == []
    auth = sent[0]["auth"]
    assert emulator.portals.token("default", auth["access_token"]) is None
    assert emulator.portals.token("default", auth["refresh_token"], "refresh") is None


def test_an_idle_delivery_thread_only_reads(emulator, monkeypatch):
    """With nothing queued a thread looks (a read) and never claims (the write lock)."""
    worker, events = emulator.deliveries, emulator.events
    looks, claims = [], []

    def has_queued():
        looks.append(1)
        if len(looks) == 3:
            worker._stop.set()
        return False

    monkeypatch.setattr("b24emu.events.worker.POLL", 0)
    monkeypatch.setattr(events, "has_queued", has_queued)
    def claim(*args):
        claims.append(args)
        worker._stop.set()

    monkeypatch.setattr(events, "claim", claim)
    worker._run()
    assert len(looks) == 3 and claims == []
