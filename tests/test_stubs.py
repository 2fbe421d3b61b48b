"""Stubs: methods the emulator does not emulate, answered through the same front door.

In-process (Flask's test client, a manual clock) on the default portal, whose webhook of user 1
is granted the scopes apps use most. End-to-end runs with real clients are in
tests/test_stubs_e2e.py.
"""

from __future__ import annotations

import json

import pytest
from b24emu import create_app
from b24emu.stubs import answer as stub_answer

from tests.conftest import ROOT, T0

HOOK = "/rest/1/devtoken/"
API = "/_emulator/stubs"
DEFAULT_PORTAL = ROOT / "fixtures" / "default.json"


@pytest.fixture
def settings(settings):
    return settings.with_overrides(fixtures=str(DEFAULT_PORTAL), rate_limit="off")


def add(client, **stub):
    response = client.post(API, json=stub)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def call(client, method, params=None, hook=HOOK, suffix=".json"):
    return client.post(f"{hook}{method}{suffix}", json=params or {})


def test_an_unknown_method_answers_once_stubbed(client):
    assert call(client, "crm.deal.get", {"ID": 5}).status_code == 404
    stub = add(client, method="crm.deal.get", result={"ID": "5", "TITLE": "Deal"})
    reply = call(client, "CRM.Deal.Get", {"ID": 5})
    body = reply.get_json()
    assert reply.status_code == 200 and body["result"] == {"ID": "5", "TITLE": "Deal"}
    assert set(body["time"]) == {"start", "finish", "duration", "processing", "date_start",
                                 "date_finish", "operating_reset_at", "operating"}
    assert body["time"]["start"] == T0
    entry = client.get("/_emulator/journal").get_json()["items"][0]
    assert entry["method"] == "crm.deal.get" and entry["stub_id"] == stub["id"]
    assert entry["status"] == 200
    assert client.get(API).get_json()["items"][0]["hits"] == 1


def test_the_most_specific_match_wins_then_the_newest(client):
    general = add(client, method="crm.deal.get", result="any")
    add(client, method="crm.deal.get", params={"id": "5"}, result="five (old)")
    add(client, method="crm.deal.get", params={"ID": 5}, result="five")
    add(client, method="crm.deal.get", params={"ID": 5, "SELECT": ["TITLE"]}, result="titled")
    assert call(client, "crm.deal.get", {"ID": 7}).get_json()["result"] == "any"
    assert call(client, "crm.deal.get", {"id": "5"}).get_json()["result"] == "five"
    assert call(client, "crm.deal.get", {"ID": 5, "select": ["TITLE", "ID"]}
                ).get_json()["result"] == "titled"
    assert call(client, "crm.deal.get", {"ID": 5, "select": ["ID"]}
                ).get_json()["result"] == "five"
    # form-encoded parameters are decoded by PHP's rules before matching
    form = client.post(f"{HOOK}crm.deal.get.json", data="ID=5&select[0]=TITLE",
                       content_type="application/x-www-form-urlencoded")
    assert form.get_json()["result"] == "titled"
    client.delete(f"{API}/{general['id']}")
    missing = call(client, "crm.deal.get", {"ID": 7})
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "ERROR_METHOD_NOT_FOUND"


def test_templates_echo_the_request(client):
    add(client, method="crm.deal.get", result={
        "ID": "{{params.ID}}", "NUMBER": "{{ params.id|int }}", "TITLE": "Deal #{{params.ID}}",
        "ASKED": "{{params.select}}", "BY": "{{user_id}}", "AT": "{{now}}", "HIT": "{{hit}}",
        "MISSING": "{{params.NOPE}}", "TEXT": "a {{params.NOPE}}b", "KEPT": "{{other}}",
        "METHOD": "{{method}}"})
    result = call(client, "crm.deal.get", {"ID": "12", "select": ["ID", "TITLE"]}
                  ).get_json()["result"]
    assert result == {"ID": "12", "NUMBER": 12, "TITLE": "Deal #12", "ASKED": ["ID", "TITLE"],
                      "BY": 1, "AT": "2026-01-01T00:00:00+00:00", "HIT": 1, "MISSING": None,
                      "TEXT": "a b", "KEPT": "{{other}}", "METHOD": "crm.deal.get"}


def test_errors_and_sequences(client):
    add(client, method="tasks.task.add", sequence=[
        {"times": 2, "error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests",
         "status": 503},
        {"error": "ACCESS_DENIED"},
        {"result": {"task": {"id": "{{hit}}"}}}])
    answers = [call(client, "tasks.task.add", {"fields": {"TITLE": "t"}}) for _ in range(5)]
    assert [a.status_code for a in answers] == [503, 503, 400, 200, 200]
    assert answers[0].get_json() == {"error": "QUERY_LIMIT_EXCEEDED",
                                     "error_description": "Too many requests"}
    assert answers[2].get_json() == {"error": "ACCESS_DENIED", "error_description": ""}
    assert [a.get_json()["result"]["task"]["id"] for a in answers[3:]] == [4, 5]


def test_scope_defaults_to_the_method_prefix(client):
    add(client, method="crm.deal.get", result=1)
    add(client, method="user.search", result=True)
    add(client, method="app.info", scope="", result={"ID": 1})
    refused = call(client, "crm.deal.get", hook="/rest/2/noimtoken/")
    assert refused.status_code == 401 and refused.get_json()["error"] == "insufficient_scope"
    assert call(client, "user.search", hook="/rest/2/noimtoken/").status_code == 200
    assert call(client, "app.info", hook="/rest/2/noimtoken/").get_json()["result"] == {"ID": 1}
    assert call(client, "crm.deal.get", hook="/rest/2/wrongcode/").status_code == 401


def test_override_replaces_an_emulated_method_only_when_asked(client):
    add(client, method="user.current", result={"ID": "99"})
    assert call(client, "user.current").get_json()["result"]["ID"] == "1"
    add(client, method="user.current", override=True, params={"MARK": "x"}, result={"ID": "99"})
    assert call(client, "user.current").get_json()["result"]["ID"] == "1"
    assert call(client, "user.current", {"MARK": "x"}).get_json()["result"] == {"ID": "99"}


def test_batch_mixes_stubs_with_emulated_methods_and_references_them(client):
    add(client, method="crm.deal.get", result={"ID": "{{params.ID}}", "ASSIGNED_BY_ID": "2",
                                               "TITLE": "Deal {{params.ID}}"})
    reply = call(client, "batch", {"halt": 0, "cmd": {
        "deal": "crm.deal.get?ID=7",
        "note": "im.notify.personal.add?USER_ID=$result[deal][ASSIGNED_BY_ID]"
                "&MESSAGE=$result[deal][TITLE] changed",
        "gone": "crm.contact.get?ID=1"}})
    body = reply.get_json()["result"]
    assert body["result"]["deal"]["TITLE"] == "Deal 7" and isinstance(body["result"]["note"], int)
    assert body["result_error"]["gone"]["error"] == "ERROR_METHOD_NOT_FOUND"
    note = client.get("/_emulator/notifications").get_json()["items"][0]
    assert note["recipient_id"] == 2 and note["message"] == "Deal 7 changed"


def test_xml_transport(client):
    add(client, method="crm.deal.fields", result={"ID": {"type": "integer"}})
    reply = client.get(f"{HOOK}crm.deal.fields.xml")
    assert reply.status_code == 200 and reply.content_type.startswith("text/xml")
    assert "<response><result><ID><type>integer</type></ID></result><time><start>" in \
        reply.get_data(as_text=True)


def test_methods_and_method_get_list_stubbed_methods(client):
    add(client, method="crm.deal.get", result=1)
    add(client, method="app.info", scope="", result=1)
    listed = call(client, "methods").get_json()["result"]
    assert "crm.deal.get" in listed and "app.info" in listed
    assert "crm.deal.get" not in call(client, "methods", hook="/rest/2/noimtoken/"
                                      ).get_json()["result"]
    assert call(client, "method.get", {"name": "crm.deal.get"}).get_json()["result"] == {
        "isExisting": True, "isAvailable": True}
    assert call(client, "method.get", {"name": "crm.deal.get"}, hook="/rest/2/noimtoken/"
                ).get_json()["result"] == {"isExisting": True, "isAvailable": False}
    assert call(client, "method.get", {"name": "crm.deal.list"}).get_json()["result"] == {
        "isExisting": False, "isAvailable": False}


def test_faults_and_the_operating_budget_apply_to_stubs(settings, clock):
    client = create_app(settings.with_overrides(operating_costs="crm.deal.get=500"),
                        clock=clock).test_client()
    add(client, method="crm.deal.get", result=1)
    fault = client.post("/_emulator/faults", json={"method": "crm.deal.get",
                                                    "error": "QUERY_LIMIT_EXCEEDED", "times": 1})
    assert fault.status_code == 201
    assert call(client, "crm.deal.get").status_code == 503
    first = call(client, "crm.deal.get")
    assert first.status_code == 200 and first.get_json()["time"]["operating"] == 500
    blocked = call(client, "crm.deal.get")
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "OPERATION_TIME_LIMIT"
    unknown = client.post("/_emulator/faults", json={"method": "crm.lead.get", "error": "X"})
    assert unknown.status_code == 400


def test_latency_and_events(client, monkeypatch):
    slept, fired = [], []
    monkeypatch.setattr(stub_answer, "wait", slept.append)
    monkeypatch.setattr(stub_answer, "fire_stub_events",
                        lambda emulator, portal, caller, events: fired.append(
                            (portal, caller.user_id, events)))
    events = [{"event": "ONCRMDEALUPDATE", "data": {"FIELDS": {"ID": 5}}}]
    stored = add(client, method="crm.deal.update", latency=1.5, events=events, result=True)
    assert stored["events"] == events and stored["latency"] == 1.5
    assert call(client, "crm.deal.update", {"ID": 5}).get_json()["result"] is True
    assert slept == [1.5] and fired == [("default", 1, events)]


def test_control_api_validates_and_removes(client):
    bad = [({"result": 1}, "method: Missing data for required field."),
           ({"method": "crm.x"}, "result: give either a result or an error"),
           ({"method": "crm.x", "result": 1, "error": "E"}, "result: give either"),
           ({"method": "crm x", "result": 1}, "method: String does not match"),
           ({"method": "crm.x", "result": 1, "latency": 99}, "latency:"),
           ({"method": "crm.x", "result": 1, "sequence": [{"result": 2}]}, "sequence:"),
           ({"method": "crm.x", "error": "E", "status": 200}, "status:"),
           ({"method": "crm.x", "result": 1, "colour": "red"}, "colour: Unknown field."),
           ([{"method": "crm.x", "result": 1}, {"method": "crm.y"}], "[1].result:")]
    for body, message in bad:
        reply = client.post(API, json=body)
        assert reply.status_code == 400, body
        assert reply.get_json()["error"] == "invalid_parameter"
        assert message in reply.get_json()["error_description"], reply.get_json()
    assert client.post(API, data="nope", content_type="application/json").status_code == 400
    assert client.post(API, data="nope").status_code == 415  # not JSON: refused before parsing
    assert client.get(API).get_json() == {"items": []}
    many = client.post(API, json=[{"method": "crm.a", "result": 1},
                                  {"method": "crm.b", "error": "E", "status": 403}])
    assert many.status_code == 201
    first, second = many.get_json()["items"]
    assert second == {**second, "method": "crm.b", "error": "E", "status": 403, "scope": "crm",
                      "source": "api", "hits": 0}
    again = client.post(API, json=first)  # what GET shows can be posted again
    assert again.status_code == 201 and again.get_json()["result"] == 1
    assert client.delete(f"{API}/{first['id']}").get_json() == {"deleted": 1}
    assert client.delete(f"{API}/{first['id']}").status_code == 404
    assert client.delete(f"{API}/abc").status_code == 404
    assert client.delete(API).get_json() == {"deleted": 2}


def test_fixture_stubs_load_and_come_back_on_reset(settings, clock, tmp_path):
    portal = json.loads(DEFAULT_PORTAL.read_text())
    portal["stubs"] = [{"method": "sonet_group.get", "result": [{"ID": "1", "NAME": "HQ"}],
                        "list": False}]
    path = tmp_path / "portal.json"
    path.write_text(json.dumps(portal))
    client = create_app(settings.with_overrides(fixtures=str(path)), clock=clock).test_client()
    assert call(client, "sonet_group.get").get_json()["result"] == [{"ID": "1", "NAME": "HQ"}]
    add(client, method="crm.deal.get", result=1)
    assert client.delete(API, headers={"X-B24EMU-Control": "1"}).status_code == 200
    assert call(client, "sonet_group.get").status_code == 404
    client.post("/_emulator/reset", json={"scope": "all"})
    assert [stub["method"] for stub in client.get(API).get_json()["items"]] == ["sonet_group.get"]
    assert client.get(API).get_json()["items"][0]["source"] == "fixture"


def test_a_bad_fixture_stub_is_named(tmp_path):
    from b24emu.store.fixtures import FixtureError, parse_fixture

    portal = json.loads(DEFAULT_PORTAL.read_text())
    portal["stubs"] = [{"method": "crm.deal.get", "result": 1}, {"method": "crm.deal.get"}]
    with pytest.raises(FixtureError, match=r"stubs\[1\]\.result: give either a result"):
        parse_fixture(portal)


DEALS = [{"ID": str(n), "TITLE": f"Deal {n}", "STAGE_ID": "WON" if n % 3 == 0 else "NEW",
          "OPPORTUNITY": str(n * 100)} for n in range(1, 121)]


def test_a_list_result_pages_50_at_a_time_with_next_and_total(client):
    add(client, method="crm.deal.list", result=DEALS)
    pages, start = [], 0
    while start is not None:
        body = call(client, "crm.deal.list", {"start": start}).get_json()
        pages.append(body)
        start = body.get("next")
    assert [len(page["result"]) for page in pages] == [50, 50, 20]
    assert [page.get("next") for page in pages] == [50, 100, None]
    assert {page["total"] for page in pages} == {120}
    assert [deal["ID"] for page in pages for deal in page["result"]] == [
        str(n) for n in range(1, 121)]


def test_a_list_result_filters_orders_and_selects(client):
    add(client, method="crm.deal.list", result=DEALS)
    body = call(client, "crm.deal.list", {
        "filter": {"STAGE_ID": "WON", ">=OPPORTUNITY": 9000, "%TITLE": "deal 1"},
        "order": {"ID": "DESC"}, "select": ["TITLE"]}).get_json()
    assert body["result"] == [{"ID": "120", "TITLE": "Deal 120"},
                              {"ID": "117", "TITLE": "Deal 117"},
                              {"ID": "114", "TITLE": "Deal 114"},
                              {"ID": "111", "TITLE": "Deal 111"},
                              {"ID": "108", "TITLE": "Deal 108"},
                              {"ID": "105", "TITLE": "Deal 105"},
                              {"ID": "102", "TITLE": "Deal 102"}]
    assert body["total"] == 7 and "next" not in body
    assert call(client, "crm.deal.list", {"filter": {"@ID": [3, 5], "!STAGE_ID": "WON"}}
                ).get_json()["result"] == [DEALS[4]]


def test_the_fast_list_walk_ends(client):
    """What the JS SDK's callList and b24pysdk's fast helpers send: order ID ASC, `>ID` the
    last id seen, start=-1, until a short page."""
    add(client, method="crm.deal.list", result=DEALS)
    seen, last = [], 0
    for _ in range(10):
        body = call(client, "crm.deal.list", {"order": {"ID": "ASC"}, "filter": {">ID": last},
                                              "start": -1}).get_json()
        assert body["total"] == 0 and "next" not in body  # start=-1: the portal sends 0
        seen += [deal["ID"] for deal in body["result"]]
        if len(body["result"]) < 50:
            break
        last = body["result"][-1]["ID"]
    assert seen == [str(n) for n in range(1, 121)]


def test_a_recorded_page_is_answered_as_it_was(client):
    add(client, method="crm.deal.list", params={"start": 50}, result=DEALS[50:100], total=120,
        next=100)
    body = call(client, "crm.deal.list", {"start": 50}).get_json()
    assert body["result"] == DEALS[50:100] and body["next"] == 100 and body["total"] == 120
    add(client, method="sonet_group.get", result=[{"ID": "1"}, {"ID": "2"}], list=False)
    plain = call(client, "sonet_group.get", {"filter": {"ID": 2}}).get_json()
    assert plain["result"] == [{"ID": "1"}, {"ID": "2"}] and "total" not in plain


def test_stubs_belong_to_one_portal(client):
    seeded = client.post("/_emulator/seed", json={
        "name": "acme", "domain": "acme.localhost", "users": [{"id": 1}],
        "webhooks": [{"user_id": 1, "code": "acmetoken", "scopes": ["crm"]}],
        "stubs": [{"method": "crm.deal.get", "result": "acme's"}]})
    assert seeded.status_code == 200
    assert client.post("/_emulator/stubs?portal=acme", json={
        "method": "crm.lead.get", "result": 1}).status_code == 201
    acme = {"Host": "acme.localhost"}
    assert client.post("/rest/1/acmetoken/crm.deal.get", json={}, headers=acme
                       ).get_json()["result"] == "acme's"
    assert call(client, "crm.deal.get").status_code == 404
    assert call(client, "crm.lead.get").status_code == 404
    assert client.get(API).get_json() == {"items": []}
    assert [s["method"] for s in client.get(f"{API}?portal=acme").get_json()["items"]] == [
        "crm.deal.get", "crm.lead.get"]
    bad = client.post("/_emulator/seed", json={"name": "acme", "domain": "acme.localhost",
                                               "users": [{"id": 1}], "stubs": [{"method": "x"}]})
    assert bad.status_code == 400 and "stubs[0].result" in bad.get_json()["error_description"]
    assert len(client.get(f"{API}?portal=acme").get_json()["items"]) == 2  # unchanged


def test_a_call_skips_the_stub_lookup_while_no_stub_is_stored(client, monkeypatch):
    from b24emu.stubs.store import StubStore

    looked_up = []
    original = StubStore.candidates
    monkeypatch.setattr(StubStore, "candidates",
                        lambda self, *args, **kwargs: looked_up.append(args)
                        or original(self, *args, **kwargs))
    assert call(client, "user.current").status_code == 200
    assert call(client, "crm.deal.get").status_code == 404
    assert looked_up == []
    stub = add(client, method="crm.deal.get", result=1)
    assert call(client, "crm.deal.get").get_json()["result"] == 1
    assert len(looked_up) == 1
    assert client.delete(f"{API}/{stub['id']}").get_json() == {"deleted": 1}
    assert call(client, "crm.deal.get").status_code == 404
    add(client, method="crm.deal.get", result=2)
    assert client.delete(API).get_json() == {"deleted": 1}
    add(client, method="crm.deal.get", result=3)
    client.post("/_emulator/reset", json={"scope": "all"})
    assert call(client, "crm.deal.get").status_code == 404
    assert len(looked_up) == 1


def test_a_result_nested_too_deep_is_refused_when_added(client):
    deep = '{"method": "crm.deep", "result": ' + "[" * 600 + "1" + "]" * 600 + "}"
    reply = client.post(API, data=deep, content_type="application/json")
    assert reply.status_code == 400
    assert "result: nested deeper than 100 levels" in reply.get_json()["error_description"]
    deep = {"method": "crm.deep", "params": {"A": {"B": 1}}, "result": 1}
    for _ in range(100):
        deep["params"] = {"A": deep["params"]}
    assert client.post(API, json=deep).status_code == 400
    shallow = "[" * 99 + "1" + "]" * 99
    add(client, method="crm.deep", result=json.loads(shallow))
    assert call(client, "crm.deep").get_json()["result"] == json.loads(shallow)


def test_the_latencies_of_one_request_add_up_to_a_minute_at_most(client, monkeypatch):
    """A portal cuts a request off at 60 s: a batch of 50 calls to a stub that waits 50 s each
    sleeps 60 s in all, not 41 minutes; the next request has its own minute."""
    from b24emu import clock

    slept: list[float] = []
    monkeypatch.setattr(clock, "_sleep", slept.append)
    add(client, method="crm.deal.get", latency=50, result={"ID": 1})
    commands = {f"c{index}": "crm.deal.get?ID=1" for index in range(50)}
    reply = client.post("/rest/1/devtoken/batch", json={"cmd": commands})
    assert reply.status_code == 200 and len(reply.get_json()["result"]["result"]) == 50
    assert slept == [50, 10]
    call(client, "crm.deal.get", {"ID": 1})
    assert slept == [50, 10, 50]
