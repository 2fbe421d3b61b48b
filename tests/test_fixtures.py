"""The fixture format: the default portal, and clear errors for bad files."""

from __future__ import annotations

import json

import pytest
from b24emu.store.fixtures import FixtureError, load_fixture_file, parse_fixture

from tests.conftest import ROOT

DEFAULT = ROOT / "fixtures" / "default.json"


def test_default_portal_is_what_the_readme_promises():
    portal = load_fixture_file(DEFAULT)
    users = {user["id"]: user for user in portal["users"]}
    assert set(users) == {1, 2, 3}
    assert users[1]["active"] and users[1]["admin"] and users[2]["active"]
    assert not users[3]["active"]
    hooks = {hook["code"]: hook for hook in portal["webhooks"]}
    assert hooks["devtoken"]["user_id"] == 1 and {"im", "user"} <= set(hooks["devtoken"]["scopes"])
    assert hooks["noimtoken"]["user_id"] == 2 and "im" not in hooks["noimtoken"]["scopes"]
    apps = {app["client_id"]: app for app in portal["apps"]}
    assert set(apps) == {"local.emulator.app", "local.events.app"}
    app = apps["local.emulator.app"]
    common = {"im", "imbot", "user", "user_basic", "crm", "task", "tasks", "department", "disk",
              "calendar"}  # the scopes apps use most: their stubs work without a fixture edit
    assert common <= set(hooks["devtoken"]["scopes"]) and app["scopes"] == hooks["devtoken"][
        "scopes"]
    assert app["application_token"] == "devapplicationtoken"
    assert {"crm", "im"} <= set(apps["local.events.app"]["scopes"])
    assert hooks["noimtoken"]["scopes"] == ["user"]
    tokens = {token["access_token"]: token for token in app["tokens"]}
    assert tokens["devaccesstoken"]["user_id"] == 1
    assert tokens["devaccesstoken"]["expires_at"].year == 2099
    assert tokens["expiredaccesstoken"]["expires_at"].year == 2020


def minimal(**changes) -> dict:
    return {"users": [{"id": 1}], **changes}


@pytest.mark.parametrize("data, message", [
    ({}, "users: Missing data for required field."),
    ({"users": [{"id": 0}]}, "users[0].id: Must be greater than or equal to 1."),
    ({"users": [{"id": "1"}]}, "users[0].id: Not a valid integer."),
    ({"users": [{"id": 1}, {"id": 1}]}, "users[1].id: duplicate user id 1"),
    (minimal(webhooks=[{"user_id": 5, "code": "x", "scopes": ["im"]}]),
     "webhooks[0].user_id: no such user"),
    (minimal(webhooks=[{"user_id": 1, "code": "has space", "scopes": ["im"]}]),
     "webhooks[0].code: String does not match expected pattern."),
    (minimal(webhooks=[{"user_id": 1, "code": "x"}]),
     "webhooks[0].scopes: Missing data for required field."),
    (minimal(apps=[{"client_id": "a", "client_secret": "s", "scopes": ["im"],
                    "tokens": [{"access_token": "t", "user_id": 9,
                                "expires_at": "2030-01-01T00:00:00+00:00"}]}]),
     "apps[0].tokens[0].user_id: no such user"),
    (minimal(apps=[{"client_id": "a", "client_secret": "s", "scopes": ["im"],
                    "tokens": [{"access_token": "t", "user_id": 1, "expires_at": "tomorrow"}]}]),
     "apps[0].tokens[0].expires_at: Not a valid datetime."),
    (minimal(colour="blue"), "colour: Unknown field."),
    ({"users": [{"id": 1, "PERSONAL_CITYY": "x"}]},
     "users[0].PERSONAL_CITYY: not a documented user field (user-scope.md) nor a UF_ field"),
    ({"users": [{"id": 1, "NAME": "Anna"}]}, "users[0].NAME: give it as 'name'"),
    ({"users": [{"id": 1, "LAST_LOGIN": "yesterday"}]},
     "users[0].LAST_LOGIN: not an ISO 8601 date or date-time"),
    ({"users": [{"id": 1, "IS_ONLINE": "yes"}]}, 'users[0].IS_ONLINE: must be "Y" or "N"'),
    ({"users": [{"id": 1, "USER_TYPE": "bot"}]},
     "users[0].USER_TYPE: must be one of employee, extranet, email"),
    ({"users": [{"id": 1, "WORK_POSITION": ["a"]}]},
     "users[0].WORK_POSITION: must be a string or a number"),
    (minimal(departments=[{"id": 1, "name": "A"}, {"id": 1, "name": "B"}]),
     "departments[1].id: duplicate department id 1"),
    (minimal(departments=[{"id": 1, "name": "A", "parent": 9}]),
     "departments[0].parent: no such department"),
    (minimal(departments=[{"id": 1, "name": "A", "head": 9}]), "departments[0].head: no such user"),
    (minimal(departments=[{"id": 2, "name": "A"}]), "users[0].departments: no such department 1"),
    (minimal(departments=[{"id": 1}]), "departments[0].name: Missing data for required field."),
])
def test_bad_fixture_names_the_field(data, message):
    with pytest.raises(FixtureError) as caught:
        parse_fixture(data)
    assert message in str(caught.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(FixtureError, match="cannot read"):
        load_fixture_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{\n  'users': []\n}")
    with pytest.raises(FixtureError, match=r"broken.json: not valid JSON \(line 2"):
        load_fixture_file(broken)


def test_webhook_ids_are_assigned(tmp_path):
    data = minimal(webhooks=[{"user_id": 1, "code": "a", "scopes": []},
                             {"id": 1, "user_id": 1, "code": "b", "scopes": []}])
    portal = parse_fixture(json.loads(json.dumps(data)))
    assert [hook["id"] for hook in portal["webhooks"]] == [2, 1]


def test_outside_a_checkout_the_default_portal_comes_from_the_package(tmp_path, monkeypatch):
    from b24emu.context import Emulator
    from b24emu.settings import Settings

    monkeypatch.chdir(tmp_path)  # no fixtures/ directory here, as for an installed b24emu
    emulator = Emulator.open(Settings(db=str(tmp_path / "db.sqlite3")))
    assert [user["login"] for user in emulator.portals.users("default")] == [
        "admin", "bob", "carol"]


def test_users_carry_any_documented_or_uf_field():
    portal = parse_fixture({"users": [{"id": 1, "PERSONAL_CITY": "Berlin", "UF_USR_X": [1, 2],
                                       "UF_SKILLS": "sql", "LAST_LOGIN": "2026-01-02"}],
                            "departments": [{"id": 1, "name": "Company", "head": 1}]})
    assert portal["users"][0]["extra"] == {"PERSONAL_CITY": "Berlin", "UF_USR_X": [1, 2],
                                           "UF_SKILLS": "sql", "LAST_LOGIN": "2026-01-02"}
    assert portal["departments"] == [{"id": 1, "name": "Company", "parent": None, "head": 1,
                                      "sort": 500}]


def test_default_portal_has_a_company_structure():
    portal = load_fixture_file(DEFAULT)
    departments = {department["id"]: department for department in portal["departments"]}
    assert departments[1]["parent"] is None and departments[1]["head"] == 1
    assert {department["parent"] for department in portal["departments"][1:]} == {1}
    assert all(set(user["departments"]) <= set(departments) for user in portal["users"])
    assert all(user["extra"]["WORK_POSITION"] and user["extra"]["PERSONAL_CITY"]
               for user in portal["users"])
