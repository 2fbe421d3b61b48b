"""The `_global` system methods: server.time, methods, method.get, scope, profile (B 6.6, 7.5)."""

from __future__ import annotations

import pytest
from b24emu import create_app
from b24emu.settings import Settings

from tests.conftest import T0, TEST_PORTAL


def test_server_time_is_the_portals_clock_in_iso(rest, clock):
    assert rest.result("server.time") == "2026-01-01T00:00:00+00:00"
    clock.advance(3661.7)
    assert rest.result("server.time") == "2026-01-01T01:01:01+00:00"


def test_server_time_uses_the_portal_time_zone(tmp_path, clock):
    settings = Settings(db=str(tmp_path / "tz.sqlite3"), fixtures=str(TEST_PORTAL),
                        timezone="Europe/Berlin")
    client = create_app(settings, clock=clock).test_client()
    response = client.post("/rest/1/devtoken/server.time.json", json={})
    assert response.get_json()["result"] == "2026-01-01T01:00:00+01:00"


def test_server_time_needs_no_scope(rest):
    # webhook 2 has only `user`, webhook 3 only `im`: both may call _global methods
    assert rest.result("server.time", user=2, code="noimtoken").startswith("2026-01-01T")
    response = rest.oauth("server.time", token="noimaccesstoken")
    assert response.status_code == 200


def test_methods_lists_the_callers_scopes_plus_global(rest):
    names = rest.result("methods", user=1, code="abc123token")  # scope im only
    assert "batch" in names and "server.time" in names and "methods" in names
    assert "im.notify.personal.add" in names
    assert "user.get" not in names and "user.current" not in names
    # the portal's order: its own _global methods, profile last of them, then scope by scope
    assert names[:5] == ["batch", "scope", "methods", "method.get", "server.time"]
    assert names.index("profile") < names.index("im.notify.personal.add")


def test_methods_of_another_caller(rest):
    names = rest.result("methods", user=2, code="noimtoken")  # scope user only
    assert "user.get" in names and "profile" in names
    assert not [name for name in names if name.startswith("im.")]


def test_methods_scope_parameter_restricts_and_empty_gives_only_global(rest):
    only_user = rest.result("methods", {"scope": "user"}, user=1, code="abc123token")
    assert sorted(only_user) == ["user.current", "user.get", "user.search"]
    only_global = rest.result("methods", {"SCOPE": ""})
    assert set(only_global) == {"batch", "method.get", "methods", "profile", "scope",
                                "server.time", "events", "event.bind", "event.unbind",
                                "event.get", "event.offline.get", "event.offline.clear",
                                "event.offline.error", "event.offline.list"}
    assert rest.result("methods", {"scope": "nosuchscope"}) == []


def test_methods_full_lists_every_public_method(rest, emulator):
    names = rest.result("methods", {"full": "true"}, user=2, code="noimtoken")
    public = {entry.name for entry in emulator.registry.all() if not entry.private}
    assert set(names) == public
    assert "im.notify.personal.add" in names  # not granted, but listed with full
    assert rest.result("methods", {"full": "0"}, user=2, code="noimtoken") == rest.result(
        "methods", user=2, code="noimtoken")


def test_methods_leaves_private_methods_out(rest, emulator):
    private = {entry.name for entry in emulator.registry.all() if entry.private}
    names = set(rest.result("methods", {"full": True}))
    assert not private & names
    for name in private:  # a private method still exists for method.get
        assert rest.result("method.get", {"name": name})["isExisting"] is True


@pytest.mark.parametrize(("name", "existing", "available"), [
    ("im.notify.personal.add", True, True),
    ("user.get", True, False),
    ("batch", True, True),
    ("server.time", True, True),
    ("IM.NOTIFY.PERSONAL.ADD", False, False),  # the key is the lower-case method name
    ("no.such.method", False, False),
    ("", False, False),
])
def test_method_get(rest, name, existing, available):
    result = rest.result("method.get", {"name": name}, user=1, code="abc123token")
    assert result == {"isExisting": existing, "isAvailable": available}


def test_method_get_reads_name_case_sensitively(rest):
    assert rest.result("method.get", {"NAME": "batch"}) == {"isExisting": False,
                                                            "isAvailable": False}
    assert rest.result("method.get") == {"isExisting": False, "isAvailable": False}


def test_method_get_over_oauth_follows_the_token_scopes(rest):
    response = rest.oauth("method.get", {"name": "user.current"})  # token scope: im
    assert response.get_json()["result"] == {"isExisting": True, "isAvailable": False}


def test_scope_lists_caller_scopes_and_full_lists_all(rest):
    assert rest.result("scope") == ["im", "user", "user_basic"]
    assert rest.result("scope", user=2, code="noimtoken") == ["user"]
    full = rest.result("scope", {"FULL": "true"}, user=2, code="noimtoken")
    assert {"im", "user", "user_basic"} <= set(full)
    assert full == sorted(full)
    assert rest.result("scope", {"full": "0"}, user=2, code="noimtoken") == ["user"]
    assert rest.oauth("scope").get_json()["result"] == ["im"]


def test_scope_full_is_the_docs_whole_list(rest):
    """The docs' example `{"full": true}`: every scope of api-reference/scopes/permissions.md."""
    full = rest.webhook("scope", {"full": True}).get_json()["result"]
    documented = {  # the table's scope codes, and user-scope.md's limited user scopes
        "ai_admin", "biconnector", "bizproc", "booking", "calendar", "call", "cashbox", "catalog",
        "contact_center", "crm", "documentgenerator", "delivery", "department", "disk", "entity",
        "humanresources", "humanresources.hcmlink", "im", "imbot", "imconnector", "imopenlines",
        "intranet", "landing", "lists", "log", "mailservice", "main", "messageservice", "mobile",
        "pay_system", "placement", "pull", "rpa", "sale", "salescenter", "sign.b2e",
        "sonet_group", "socialnetwork", "task", "telephony", "timeman", "user", "user.userfield",
        "userfieldconfig", "userconsent", "vote", "user_basic", "user_brief"}
    assert documented <= set(full)
    assert len(full) >= 48
    assert full == sorted(set(full))



def test_profile_of_the_caller(rest):
    assert rest.result("profile") == {
        "ID": "1", "ADMIN": True, "NAME": "Anna", "LAST_NAME": "Admin", "PERSONAL_GENDER": "",
        "TIME_ZONE": "", "TIME_ZONE_OFFSET": 0,
    }
    bob = rest.result("profile", user=2, code="noimtoken")
    assert bob["ID"] == "2" and bob["ADMIN"] is False and bob["NAME"] == "Bob"


def test_profile_time_zone_offset_is_the_users_offset(tmp_path, clock):
    fixture = tmp_path / "portal.json"
    fixture.write_text(
        '{"users": [{"id": 1, "name": "Kim", "gender": "F", "time_zone": "Asia/Tokyo"},'
        ' {"id": 2, "name": "Lee"}],'
        ' "webhooks": [{"id": 1, "user_id": 1, "code": "tok", "scopes": []},'
        ' {"id": 2, "user_id": 2, "code": "tok2", "scopes": []}]}')
    settings = Settings(db=str(tmp_path / "p.sqlite3"), fixtures=str(fixture),
                        timezone="Europe/Berlin")
    client = create_app(settings, clock=clock).test_client()
    body = client.get("/rest/1/tok/profile").get_json()
    assert body["result"]["TIME_ZONE"] == "Asia/Tokyo"
    assert body["result"]["TIME_ZONE_OFFSET"] == 9 * 3600  # the user's own offset
    assert body["result"]["PERSONAL_GENDER"] == "F"
    assert body["time"]["start"] == T0
    lee = client.get("/rest/2/tok2/profile").get_json()["result"]
    assert lee["TIME_ZONE"] == "" and lee["TIME_ZONE_OFFSET"] == 3600  # the portal's (+01:00)


def test_system_methods_in_a_batch(rest):
    result = rest.result("batch", {"cmd": {"t": "server.time", "m": "method.get?name=batch",
                                           "p": "profile"}})
    assert result["result"]["t"] == "2026-01-01T00:00:00+00:00"
    assert result["result"]["m"] == {"isExisting": True, "isAvailable": True}
    assert result["result"]["p"]["ID"] == "1"
    assert result["result_error"] == []


def test_system_methods_answer_xml(client):
    response = client.get("/rest/1/devtoken/method.get.xml?name=batch")
    assert response.get_data(as_text=True).startswith(
        '<response><result><isExisting>1</isExisting>'
        "<isAvailable>1</isAvailable></result>")
