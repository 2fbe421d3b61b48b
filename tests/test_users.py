"""user.current and user.get over the fixture's users (api-reference/user/)."""

from __future__ import annotations

import json

import pytest
from b24emu import create_app
from b24emu.methods.registry import Call, Caller
from b24emu.settings import Settings

from tests.conftest import T0


def ids(result) -> list[int]:
    return [int(user["ID"]) for user in result]


def test_user_current_is_the_webhooks_user(rest):
    # A user with no values beyond the fixture's basics: the fields a portal always sends
    # (user-get.md's second user), in the portal's order.
    reply = rest.webhook("user.current")
    assert reply.get_json()["result"] == {
        "ID": "1", "ACTIVE": True, "NAME": "Anna", "LAST_NAME": "Admin",
        "EMAIL": "", "LAST_LOGIN": "", "DATE_REGISTER": "2026-01-01T00:00:00+00:00",
        "IS_ONLINE": "N", "TIMESTAMP_X": {}, "LAST_ACTIVITY_DATE": {}, "PERSONAL_GENDER": "",
        "PERSONAL_BIRTHDAY": "", "WORK_POSITION": "", "UF_EMPLOYMENT_DATE": "",
        "UF_DEPARTMENT": [1], "USER_TYPE": "employee",
    }
    assert b'"TIMESTAMP_X":{},"LAST_ACTIVITY_DATE":{}' in reply.get_data()
    assert rest.result("user.current", user=2, code="noimtoken")["ID"] == "2"


def test_user_methods_need_the_user_scope(rest):
    response = rest.webhook("user.current", user=1, code="abc123token")  # scope im only
    assert response.status_code == 401
    assert response.get_json()["error"] == "insufficient_scope"
    oauth = rest.oauth("user.get", token="noimaccesstoken")  # scope user
    assert oauth.status_code == 200
    assert ids(oauth.get_json()["result"]) == [1, 2, 3]
    assert rest.oauth("user.current").status_code == 401  # devaccesstoken: scope im


def test_user_get_lists_everyone_with_total_and_no_next(rest):
    response = rest.webhook("user.get")
    body = response.get_json()
    assert ids(body["result"]) == [1, 2, 3]
    assert body["total"] == 3 and "next" not in body
    assert body["result"][2]["ACTIVE"] is False  # dismissed users are listed unless filtered
    assert list(body) == ["result", "total", "time"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"FILTER": {"ACTIVE": True}}, [1, 2]),
    ({"filter": {"active": "Y"}}, [1, 2]),
    ({"FILTER": {"ACTIVE": "N"}}, [3]),
    ({"FILTER": {"ID": 2}}, [2]),
    ({"FILTER": {"ID": [1, 3]}}, [1, 3]),
    ({"FILTER": {"@ID": [2, 3]}}, [2, 3]),
    ({"FILTER": {"!@ID": [2, 3]}}, [1]),
    ({"FILTER": {">ID": 1}}, [2, 3]),
    ({"FILTER": {">=ID": 2, "<ID": 3}}, [2]),
    ({"FILTER": {"!ID": 1}}, [2, 3]),
    ({"FILTER": {"NAME": "bob"}}, [2]),  # case-insensitive, like MySQL
    ({"FILTER": {"NAME": "B%"}}, [2]),
    ({"FILTER": {"%LAST_NAME": "ui"}}, [2]),
    ({"FILTER": {"!%LAST_NAME": "ui"}}, [1, 3]),
    ({"FILTER": {"=%NAME": "%a%"}}, [1, 3]),
    ({"FILTER": {"UF_DEPARTMENT": 1}}, [1, 2, 3]),
    ({"FILTER": {"UF_DEPARTMENT": 7}}, []),
    ({"FILTER": {"NAME_SEARCH": "gone"}}, [3]),
    ({"FILTER": {"NO_SUCH_FIELD": "x"}}, [1, 2, 3]),  # unknown fields are ignored
    ({"NAME": "Carol"}, [3]),  # legacy: filter fields at the top level
    ({"UF_DEPARTMENT": 1, "SORT": "ID", "ORDER": "desc"}, [3, 2, 1]),
    ({"sort": "NAME", "order": "ASC"}, [1, 2, 3]),
    ({"sort": "LAST_NAME", "order": "DESC"}, [3, 2, 1]),
    ({"sort": "nonsense"}, [1, 2, 3]),
])
def test_user_get_filter_and_sort(rest, params, expected):
    body = rest.webhook("user.get", params).get_json()
    assert ids(body["result"]) == expected
    assert body["total"] == len(expected)


def test_user_get_admin_mode_is_accepted(rest):
    assert ids(rest.result("user.get", {"ADMIN_MODE": True, "FILTER": {"ID": 3}})) == [3]
    bob = rest.result("user.get", {"ADMIN_MODE": "True"}, user=2, code="noimtoken")
    assert ids(bob) == [1, 2, 3]


@pytest.fixture
def big_portal(tmp_path, clock):
    """A portal with 120 users (ids 1..120), the even ones in department 2."""
    users = [{"id": i, "name": f"User{i:03d}", "last_name": "Many", "email": f"u{i}@example.com",
              "departments": [1, 2] if i % 2 == 0 else [1], "time_zone": "Europe/Berlin",
              "gender": "M", "date_register": "2025-06-01T12:00:00+02:00"}
             for i in range(1, 121)]
    fixture = tmp_path / "big.json"
    fixture.write_text(json.dumps({"users": users, "webhooks": [
        {"id": 1, "user_id": 1, "code": "bigtoken", "scopes": ["user"]}]}))
    settings = Settings(db=str(tmp_path / "big.sqlite3"), fixtures=str(fixture))
    return create_app(settings, clock=clock).test_client()


def test_user_get_pages_of_50_with_start(big_portal):
    def page(start=None, **params):
        if start is not None:
            params["start"] = start
        return big_portal.post("/rest/1/bigtoken/user.get.json", json=params).get_json()

    first = page()
    assert ids(first["result"]) == list(range(1, 51))
    assert first["next"] == 50 and first["total"] == 120
    second = page(50)
    assert ids(second["result"]) == list(range(51, 101)) and second["next"] == 100
    last = page(100)
    assert ids(last["result"]) == list(range(101, 121))
    assert "next" not in last and last["total"] == 120
    assert page(500)["result"] == [] and page(500)["total"] == 120
    assert ids(page("-5")["result"])[:1] == [1]
    evens = page(50, FILTER={"UF_DEPARTMENT": 2})
    assert ids(evens["result"]) == list(range(102, 121, 2)) and evens["total"] == 60
    assert "next" not in evens


def test_user_get_fields_come_from_the_fixture(big_portal):
    body = big_portal.post("/rest/1/bigtoken/user.get.json",
                           json={"FILTER": {"ID": 2}}).get_json()
    user = body["result"][0]
    assert user["EMAIL"] == "u2@example.com"
    assert user["UF_DEPARTMENT"] == [1, 2]
    assert user["TIME_ZONE"] == "Europe/Berlin" and user["PERSONAL_GENDER"] == "M"
    assert user["DATE_REGISTER"] == "2025-06-01T10:00:00+00:00"  # in the portal's zone (UTC)


def test_user_get_in_a_batch_reports_total_and_next(big_portal):
    body = big_portal.post("/rest/1/bigtoken/batch.json", json={"cmd": {
        "first": "user.get?FILTER[ACTIVE]=Y",
        "page3": "user.get?start=100",
        "me": "user.current",
        "same": "user.get?FILTER[ID]=$result[me][ID]",
    }}).get_json()["result"]
    assert len(body["result"]["first"]) == 50
    assert body["result_total"] == {"first": 120, "page3": 120, "same": 1}
    assert body["result_next"] == {"first": 50}
    assert ids(body["result"]["same"]) == [1]
    assert body["result"]["me"]["ID"] == "1"


def _call(emulator, name: str, scopes: set, params: dict | None = None):
    """Run a handler as a caller holding only `scopes` (user_basic/user_brief callers)."""
    caller = Caller("default", 1, "apauth", frozenset(scopes), webhook_id=1)
    call = Call(name, params or {}, caller, emulator, started_at=T0)
    return emulator.registry.get(name).handler(call)


def test_limited_user_scopes_read_fewer_fields(emulator):
    full = _call(emulator, "user.current", {"user"})
    basic = _call(emulator, "user.current", {"user_basic"})
    brief = _call(emulator, "user.current", {"user_brief"})
    assert "LAST_LOGIN" in full and "LAST_LOGIN" not in basic and "LAST_LOGIN" not in brief
    assert "EMAIL" in basic and "EMAIL" not in brief
    assert set(brief) < set(basic) < set(full)
    assert brief["NAME"] == "Anna" and brief["UF_DEPARTMENT"] == [1]
    assert _call(emulator, "user.current", {"user", "user_brief"}) == full


def test_limited_scope_cannot_filter_on_a_hidden_field(emulator):
    page = _call(emulator, "user.get", {"user_brief"}, {"FILTER": {"EMAIL": "x@example.com"}})
    assert ids(page.items) == [1, 2, 3]  # ignored like an unknown field
    page = _call(emulator, "user.get", {"user"}, {"FILTER": {"EMAIL": "x@example.com"}})
    assert page.items == [] and page.total == 0


def test_user_brief_webhook_reads_users_over_http(rest):
    """user_brief alone grants user.current and user.get (fewer fields), nothing in `im`."""
    me = rest.result("user.current", user=2, code="brieftoken")
    assert me["ID"] == "2" and "EMAIL" not in me
    listed = rest.webhook("user.get", {"FILTER": {"ID": 1}}, user=2, code="brieftoken").get_json()
    assert [user["ID"] for user in listed["result"]] == ["1"] and listed["total"] == 1
    denied = rest.webhook("im.notify.personal.add", {"USER_ID": 1, "MESSAGE": "x"}, user=2,
                          code="brieftoken")
    assert (denied.status_code, denied.get_json()["error"]) == (401, "insufficient_scope")
