"""user.current and user.get over the fixture's users (api-reference/user/)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from b24emu import create_app
from b24emu.methods.registry import Call, Caller
from b24emu.settings import Settings

from tests.conftest import ROOT, T0


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
    ({"FILTER": {"UF_NO_SUCH_FIELD": "x"}}, [1, 2, 3]),  # a custom field the portal lacks too
    # prepareUserValue: ACTIVE is `($v && $v !== 'N') ? 'Y' : 'N'`, so every falsy value is "N"
    ({"FILTER": {"ACTIVE": False}}, [3]),
    ({"FILTER": {"ACTIVE": ""}}, [3]),
    ({"FILTER": {"ACTIVE": "0"}}, [3]),
    ({"FILTER": {"ACTIVE": "true"}}, [1, 2]),
    # an empty value is a condition too: it matches an empty field
    ({"FILTER": {"NAME": ""}}, []),
    ({"FILTER": {"!NAME": ""}}, [1, 2, 3]),
    ({"FILTER": {"@ID": []}}, []),
    ({"FILTER": {"ID": "2abc"}}, [2]),  # ID: (int)
    ({"NAME": "Carol"}, [3]),  # legacy: filter fields at the top level
    ({"UF_DEPARTMENT": 1, "SORT": "ID", "ORDER": "desc"}, [3, 2, 1]),
    ({"sort": "NAME", "order": "ASC"}, [1, 2, 3]),
    ({"sort": "LAST_NAME", "order": "DESC"}, [3, 2, 1]),
    ({"sort": "nonsense", "order": "ASC"}, [1, 2, 3]),  # a field it cannot sort on: ID
    # prepareUserGetOrder: only `sort` and `order` both non-empty sort; else ID ascending
    ({"order": "DESC"}, [1, 2, 3]),
    ({"sort": "ID"}, [1, 2, 3]),
    ({"sort": "", "order": "DESC"}, [1, 2, 3]),
    ({"order": {"ID": "DESC"}}, [1, 2, 3]),
    ({"sort": {"NAME": "DESC"}}, [1, 2, 3]),
    ({"order": {"ID": "ASC"}, "filter": {">ID": 1}}, [2, 3]),  # the JS SDK's callList
])
def test_user_get_filter_and_sort(rest, params, expected):
    body = rest.webhook("user.get", params).get_json()
    assert ids(body["result"]) == expected
    assert_counted(body, len(expected))


def assert_counted(body: dict, count: int) -> None:
    """A page of users carries `total`; an empty one is `"result": []` alone (userGet's
    prepareUserGetResult returns an empty result untouched)."""
    if count:
        assert body["total"] == count
    else:
        assert body["result"] == [] and "total" not in body and "next" not in body


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
    past = page(500)
    assert list(past) == ["result", "time"] and past["result"] == []  # no total, no next
    minus_five = page("-5")  # only -1 turns the count off: -5 reads from 0 and counts
    assert ids(minus_five["result"]) == list(range(1, 51))
    assert (minus_five["next"], minus_five["total"]) == (50, 120)
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
    assert page.items == [] and page.total is None and page.next_start is None


def test_user_brief_webhook_reads_users_over_http(rest):
    """user_brief alone grants user.current and user.get (fewer fields), nothing in `im`."""
    me = rest.result("user.current", user=2, code="brieftoken")
    assert me["ID"] == "2" and "EMAIL" not in me
    listed = rest.webhook("user.get", {"FILTER": {"ID": 1}}, user=2, code="brieftoken").get_json()
    assert [user["ID"] for user in listed["result"]] == ["1"] and listed["total"] == 1
    denied = rest.webhook("im.notify.personal.add", {"USER_ID": 1, "MESSAGE": "x"}, user=2,
                          code="brieftoken")
    assert (denied.status_code, denied.get_json()["error"]) == (401, "insufficient_scope")


# --- every field, reduced per scope (api-reference/user/user-scope.md) ------------------------

# The docs' table, column by column, typed here independently of b24emu.user_fields.
DOCS_USER_BASIC = """ID XML_ID ACTIVE NAME LAST_NAME SECOND_NAME TITLE EMAIL PERSONAL_PHONE
WORK_PHONE WORK_POSITION WORK_COMPANY IS_ONLINE TIME_ZONE TIMESTAMP_X DATE_REGISTER
LAST_ACTIVITY_DATE PERSONAL_PROFESSION PERSONAL_GENDER PERSONAL_BIRTHDAY PERSONAL_PHOTO
PERSONAL_FAX PERSONAL_MOBILE PERSONAL_PAGER PERSONAL_STREET PERSONAL_MAILBOX PERSONAL_CITY
PERSONAL_STATE PERSONAL_ZIP PERSONAL_COUNTRY PERSONAL_NOTES WORK_DEPARTMENT WORK_WWW WORK_FAX
WORK_PAGER WORK_STREET WORK_MAILBOX WORK_CITY WORK_STATE WORK_ZIP WORK_COUNTRY WORK_PROFILE
WORK_LOGO WORK_NOTES UF_DEPARTMENT UF_DISTRICT UF_SKYPE UF_SKYPE_LINK UF_ZOOM UF_TWITTER
UF_FACEBOOK UF_LINKEDIN UF_XING UF_WEB_SITES UF_PHONE_INNER UF_EMPLOYMENT_DATE UF_TIMEMAN
UF_SKILLS UF_INTERESTS""".split()
DOCS_USER_BRIEF = """ID XML_ID ACTIVE NAME LAST_NAME SECOND_NAME TITLE IS_ONLINE TIME_ZONE
PERSONAL_PHOTO TIMESTAMP_X DATE_REGISTER PERSONAL_PROFESSION PERSONAL_GENDER PERSONAL_BIRTHDAY
PERSONAL_CITY PERSONAL_STATE PERSONAL_COUNTRY WORK_POSITION WORK_CITY WORK_STATE WORK_COUNTRY
LAST_ACTIVITY_DATE UF_EMPLOYMENT_DATE UF_TIMEMAN UF_SKILLS UF_INTERESTS UF_DEPARTMENT
UF_PHONE_INNER""".split()
DOCS_USER = """ID XML_ID ACTIVE NAME LAST_NAME SECOND_NAME TITLE EMAIL LAST_LOGIN DATE_REGISTER
TIME_ZONE IS_ONLINE TIMESTAMP_X LAST_ACTIVITY_DATE PERSONAL_PROFESSION PERSONAL_GENDER
PERSONAL_WWW PERSONAL_BIRTHDAY PERSONAL_PHOTO PERSONAL_ICQ PERSONAL_PHONE PERSONAL_FAX
PERSONAL_MOBILE PERSONAL_PAGER PERSONAL_STREET PERSONAL_MAILBOX PERSONAL_CITY PERSONAL_STATE
PERSONAL_ZIP PERSONAL_COUNTRY PERSONAL_NOTES WORK_COMPANY WORK_DEPARTMENT WORK_POSITION WORK_WWW
WORK_PHONE WORK_FAX WORK_PAGER WORK_STREET WORK_MAILBOX WORK_CITY WORK_STATE WORK_ZIP
WORK_COUNTRY WORK_PROFILE WORK_LOGO WORK_NOTES UF_DEPARTMENT UF_DISTRICT UF_SKYPE UF_SKYPE_LINK
UF_ZOOM UF_TWITTER UF_FACEBOOK UF_LINKEDIN UF_XING UF_WEB_SITES UF_PHONE_INNER
UF_EMPLOYMENT_DATE UF_TIMEMAN UF_SKILLS UF_INTERESTS""".split()
LOWER_KEYS = {"ID", "ACTIVE", "NAME", "LAST_NAME", "EMAIL", "PERSONAL_GENDER", "TIME_ZONE",
              "DATE_REGISTER", "UF_DEPARTMENT"}
DATES = {"LAST_LOGIN", "TIMESTAMP_X", "LAST_ACTIVITY_DATE", "PERSONAL_BIRTHDAY",
         "UF_EMPLOYMENT_DATE"}


@pytest.fixture
def full_portal(tmp_path, clock):
    """One user with a value for every documented field and a custom field; webhooks with each
    user scope (and user_basic + user.userfield)."""
    user = {"id": 1, "name": "Ada", "last_name": "Full", "email": "ada@example.com",
            "gender": "F", "time_zone": "Europe/Berlin", "date_register": "2025-01-02T03:04:05Z"}
    for field in DOCS_USER:
        if field not in LOWER_KEYS:
            user[field] = "2025-05-06T07:08:09+00:00" if field in DATES else f"v-{field}"
    user["IS_ONLINE"] = "Y"
    user["UF_USR_SHOE_SIZE"] = 38
    hooks = [{"id": n, "user_id": 1, "code": f"hook{n}", "scopes": scopes} for n, scopes in
             enumerate((["user"], ["user_basic"], ["user_brief"],
                        ["user_basic", "user.userfield"]), start=1)]
    fixture = tmp_path / "full.json"
    fixture.write_text(json.dumps({"users": [user], "webhooks": hooks}))
    settings = Settings(db=str(tmp_path / "full.sqlite3"), fixtures=str(fixture))
    client = create_app(settings, clock=clock).test_client()

    def current(hook: int, method: str = "user.current", **params):
        return client.post(f"/rest/1/hook{hook}/{method}", json=params).get_json()
    return current


def test_every_field_per_scope(full_portal):
    user = full_portal(1)["result"]
    assert set(user) == {*DOCS_USER, "UF_USR_SHOE_SIZE", "USER_TYPE"}
    assert list(user)[-2:] == ["UF_USR_SHOE_SIZE", "USER_TYPE"]
    docs_example_order = [  # user-get.md's example answer
        "ID", "ACTIVE", "NAME", "LAST_NAME", "SECOND_NAME", "EMAIL", "LAST_LOGIN",
        "DATE_REGISTER", "TIME_ZONE", "IS_ONLINE", "TIMESTAMP_X", "LAST_ACTIVITY_DATE",
        "PERSONAL_GENDER", "PERSONAL_WWW", "PERSONAL_BIRTHDAY", "PERSONAL_MOBILE",
        "PERSONAL_CITY", "WORK_PHONE", "WORK_POSITION", "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT"]
    assert [key for key in user if key in docs_example_order] == docs_example_order
    assert set(full_portal(2)["result"]) == set(DOCS_USER_BASIC)  # no USER_TYPE, no custom
    assert set(full_portal(3)["result"]) == set(DOCS_USER_BRIEF)
    with_custom = full_portal(4)["result"]
    assert set(with_custom) == {*DOCS_USER_BASIC, "UF_USR_SHOE_SIZE"}
    assert with_custom["UF_USR_SHOE_SIZE"] == 38
    assert user["PERSONAL_ICQ"] == "v-PERSONAL_ICQ"
    assert user["LAST_LOGIN"] == "2025-05-06T07:08:09+00:00"
    assert user["DATE_REGISTER"] == "2025-01-02T03:04:05+00:00"
    assert user["TIMESTAMP_X"] == {} and user["LAST_ACTIVITY_DATE"] == {}
    # user.get answers the same record
    assert full_portal(2, "user.get")["result"] == [full_portal(2)["result"]]


def test_limited_scope_filters_only_on_fields_it_reads(full_portal):
    # EMAIL is not a user_brief field: the condition is dropped, the user still listed
    assert len(full_portal(3, "user.get", FILTER={"EMAIL": "nobody"})["result"]) == 1
    assert full_portal(1, "user.get", FILTER={"EMAIL": "nobody"})["result"] == []
    assert len(full_portal(3, "user.get", FILTER={"PERSONAL_CITY": "v-PERSONAL_CITY"})[
        "result"]) == 1
    # a custom field: visible, hence filterable, with user or user.userfield only
    assert full_portal(1, "user.get", FILTER={"UF_USR_SHOE_SIZE": 38})["total"] == 1
    assert full_portal(1, "user.get", FILTER={">UF_USR_SHOE_SIZE": 40})["result"] == []
    assert full_portal(4, "user.get", FILTER={">UF_USR_SHOE_SIZE": 40})["result"] == []
    # user_basic alone: not an allowed name, so the condition is dropped (prepareUserFilter)
    assert full_portal(2, "user.get", FILTER={">UF_USR_SHOE_SIZE": 40})["total"] == 1


@pytest.mark.parametrize(("select", "expected"), [
    (["NAME", "last_name"], ["ID", "NAME", "LAST_NAME"]),
    (["UF_*"], ["ID", "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT", "UF_DISTRICT", "UF_SKYPE",
                "UF_SKYPE_LINK", "UF_ZOOM", "UF_TWITTER", "UF_FACEBOOK", "UF_LINKEDIN",
                "UF_XING", "UF_WEB_SITES", "UF_PHONE_INNER", "UF_TIMEMAN", "UF_SKILLS",
                "UF_INTERESTS", "UF_USR_SHOE_SIZE"]),
    (["EMAIL", "NO_SUCH_FIELD"], ["ID", "EMAIL"]),
    (["LAST_ACTIVITY_DATE"], ["ID", "LAST_ACTIVITY_DATE"]),
])
def test_user_get_select(full_portal, select, expected):
    """user-get.md: `select` names fields, `*` all, `UF_*` the custom ones; unknown skipped."""
    assert list(full_portal(1, "user.get", select=select)["result"][0]) == expected


def test_select_skips_fields_the_scope_does_not_read(full_portal):
    assert list(full_portal(3, "user.get", select=["EMAIL", "NAME"])["result"][0]) == [
        "ID", "NAME"]
    assert set(full_portal(3, "user.get", select=["*"])["result"][0]) == set(DOCS_USER_BRIEF)


# --- paging as a portal pages -------------------------------------------------------------


def test_start_is_an_offset_and_minus_1_counts_nothing(big_portal):
    """Api\\User::userGet reads `start` through getNavData($start, true): offset
    intval(start), next offset + users sent; start=-1: total 0 (no count), no next."""
    def page(**params):
        return big_portal.post("/rest/1/bigtoken/user.get.json", json=params).get_json()

    one = page(start=1)
    assert ids(one["result"]) == list(range(2, 52))
    assert (one["next"], one["total"]) == (51, 120)
    assert ids(page(start=60)["result"]) == list(range(61, 111))
    tail = page(start=one["next"] + 50)  # walking by `next` from an odd start
    assert ids(tail["result"]) == list(range(102, 121)) and "next" not in tail
    no_count = page(start=-1, FILTER={">ID": 100}, SORT="ID", ORDER="ASC")
    assert ids(no_count["result"]) == list(range(101, 121))
    assert list(no_count) == ["result", "total", "time"] and no_count["total"] == 0


def test_start_minus_1_in_a_batch_has_result_total_0(big_portal):
    body = big_portal.post("/rest/1/bigtoken/batch.json", json={"cmd": {
        "counted": "user.get?start=0",
        "fast": "user.get?start=-1&FILTER[>ID]=110",
    }}).get_json()["result"]
    assert ids(body["result"]["fast"]) == list(range(111, 121))
    assert body["result_total"] == {"counted": 120, "fast": 0}
    assert body["result_next"] == {"counted": 50}


def test_an_empty_department_filter_value_means_no_department(tmp_path, clock):
    """The portal's own idiom `'!UF_DEPARTMENT' => false`: users who have a department."""
    fixture = tmp_path / "departments.json"
    fixture.write_text(json.dumps({"users": [
        {"id": 1, "departments": [1]}, {"id": 2, "departments": []},
        {"id": 3, "departments": [1, 2]}],
        "webhooks": [{"id": 1, "user_id": 1, "code": "t", "scopes": ["user"]}]}))
    client = create_app(Settings(db=str(tmp_path / "d.sqlite3"), fixtures=str(fixture)),
                        clock=clock).test_client()

    def listed(filter_):
        body = client.post("/rest/1/t/user.get", json={"FILTER": filter_}).get_json()
        return ids(body["result"])

    assert listed({"!UF_DEPARTMENT": False}) == [1, 3]
    assert listed({"UF_DEPARTMENT": False}) == [2]
    assert listed({"UF_DEPARTMENT": ""}) == [2]
    assert listed({"UF_DEPARTMENT": None}) == [2]


# --- the default portal: realistic users, user.search, im.notify.get's users[] ----------------


@pytest.fixture
def default_portal(tmp_path, clock):
    settings = Settings(db=str(tmp_path / "default.sqlite3"),
                        fixtures=str(ROOT / "fixtures" / "default.json"))
    client = create_app(settings, clock=clock).test_client()

    def call(method: str, **params):
        return client.post(f"/rest/1/devtoken/{method}", json=params).get_json()
    return call


def test_default_users_have_realistic_values(default_portal):
    anna = default_portal("user.current")["result"]
    assert (anna["WORK_POSITION"], anna["PERSONAL_CITY"], anna["UF_DEPARTMENT"]) == (
        "Managing Director", "New York", [1])
    assert anna["DATE_REGISTER"] == "2025-02-03T09:00:00+00:00"
    assert anna["LAST_LOGIN"] == "2026-01-15T08:58:02+00:00"
    assert anna["PERSONAL_BIRTHDAY"] == "1986-04-12T00:00:00+00:00"
    # the docs' example: only the users who live there
    cities = default_portal("user.get", filter={"@PERSONAL_CITY": ["New York", "Los Angeles"]})
    assert ids(cities["result"]) == [1] and cities["total"] == 1
    recent = default_portal("user.get", filter={">LAST_ACTIVITY_DATE": "2026-01-01"})
    assert ids(recent["result"]) == [1, 2]


@pytest.mark.parametrize(("params", "expected"), [
    ({"FILTER": {"FIND": "anna"}}, [1]),
    ({"FILTER": {"FIND": "direct"}}, [1]),  # a word of the position starts with it
    ({"FILTER": {"FIND": "engin"}}, [2]),  # position and department "Engineering"
    ({"FILTER": {"FIND": "sales"}}, [3]),  # department name
    ({"FILTER": {"FIND": "bob builder"}}, [2]),  # every word
    ({"FILTER": {"FIND": "ob"}}, []),  # words are matched from their start
    ({"FILTER": {"FIND": "anna", "NAME": "Bob"}}, []),  # FIND and the other fields all hold
    ({"FILTER": {"FIND": "anna", "NAME": "An"}}, [1]),
    ({"FILTER": {"FIND": "s", "UF_DEPARTMENT": 999}}, []),
    ({"FILTER": {"NAME": "b"}}, [2]),  # right LIKE: "b%"
    ({"FILTER": {"LAST_NAME": "dmin"}}, []),
    ({"FILTER": {"WORK_POSITION": "Sales"}}, [3]),
    ({"FILTER": {"UF_DEPARTMENT_NAME": "Eng"}}, [2]),
    ({"FILTER": {"USER_TYPE": "employee"}}, [1, 2, 3]),
    ({"FILTER": {"USER_TYPE": "extranet"}}, []),
    ({"FILTER": {"ACTIVE": True, "FIND": ""}}, [1, 2]),  # empty FIND: the other fields
    ({"FILTER": {"FIND": "s"}, "sort": "ID", "order": "DESC"}, [3, 2]),  # Sales; Site
])
def test_user_search(default_portal, params, expected):
    """user-search.md: FIND over name, last name, position and department name, or the named
    fields from their start; everything else as user.get."""
    body = default_portal("user.search", **params)
    assert ids(body["result"]) == expected
    assert_counted(body, len(expected))


def test_user_search_answers_users_like_user_get(default_portal):
    found = default_portal("user.search", FILTER={"FIND": "bob"})["result"]
    assert found == default_portal("user.get", FILTER={"ID": 2})["result"]
    assert "UF_DEPARTMENT_NAME" not in found[0]  # a filter, not a field


def test_im_users_agree_with_user_get(default_portal, clock):
    """im.notify.get's users[] and user.get tell the same story: position, birthday, phones,
    presence (IS_ONLINE within 1440 s of the last activity on the emulator's clock)."""
    default_portal("im.notify.personal.add", USER_ID=1, MESSAGE="x")  # to herself: author 1
    anna = default_portal("im.notify.get")["result"]["users"][0]
    listed = default_portal("user.get", FILTER={"ID": 1})["result"][0]
    assert (anna["work_position"], anna["birthday"], anna["departments"]) == (
        listed["WORK_POSITION"], "12-04", listed["UF_DEPARTMENT"])
    assert anna["last_activity_date"] == "2026-01-15T09:12:40+00:00"
    assert anna["phones"] == {"personal_mobile": "+1 212 555 0101", "inner_phone": "101"}
    assert (anna["status"], listed["IS_ONLINE"]) == ("offline", "N")
    clock.set(datetime.fromisoformat("2026-01-15T09:30:00+00:00").timestamp())  # 1040 s later
    listed = default_portal("user.get", FILTER={"ID": 1})["result"][0]
    anna = default_portal("im.notify.get")["result"]["users"][0]
    assert (anna["status"], listed["IS_ONLINE"]) == ("online", "Y")
    assert default_portal("user.get", FILTER={"IS_ONLINE": "Y"})["total"] == 1
    clock.advance(401)  # 1441 s after the last activity
    assert default_portal("user.current")["result"]["IS_ONLINE"] == "N"


def test_email_users_are_listed_only_when_asked_for(tmp_path, clock):
    """user-get.md: the method returns all users except e-mail users; USER_TYPE finds them."""
    fixture = tmp_path / "types.json"
    fixture.write_text(json.dumps({"users": [
        {"id": 1}, {"id": 2, "USER_TYPE": "extranet"}, {"id": 3, "USER_TYPE": "email"}],
        "webhooks": [{"id": 1, "user_id": 1, "code": "t", "scopes": ["user"]}]}))
    client = create_app(Settings(db=str(tmp_path / "t.sqlite3"), fixtures=str(fixture)),
                        clock=clock).test_client()

    def listed(method="user.get", **params):
        return ids(client.post(f"/rest/1/t/{method}", json=params).get_json()["result"])

    assert listed() == [1, 2]
    assert listed(FILTER={"USER_TYPE": "email"}) == [3]
    assert listed(FILTER={"!USER_TYPE": "employee"}) == [2, 3]
    assert listed("user.search", FILTER={"USER_TYPE": "extranet"}) == [2]


# --- prepareUserFilter: only allowed field names survive ------------------------------------


@pytest.mark.parametrize(("filter_", "expected"), [
    # LOGIC is not a field name: dropped, so the two conditions are ANDed
    ({"LOGIC": "OR", "ID": 1, "NAME": "Bob"}, []),
    ({"logic": "OR", "ID": 2, "NAME": "Bob"}, [2]),
    # integer keys (sub-filters) are not field names either (in_array strict)
    ([{"ID": 2}], [1, 2, 3]),
    ({"0": {"ID": 2}, "NAME": "Anna"}, [1]),
    ([{"LOGIC": "OR", "ID": 1, "NAME": "Bob"}], [1, 2, 3]),
])
def test_user_get_ignores_logic_and_sub_filters(rest, filter_, expected):
    body = rest.webhook("user.get", {"FILTER": filter_}).get_json()
    assert ids(body["result"]) == expected
    assert_counted(body, len(expected))


def test_a_sub_filter_sent_as_a_form_is_ignored_too(client):
    """FILTER[0][ID]=2&FILTER[LOGIC]=OR&FILTER[NAME]=Anna, as PHP-style clients send it."""
    response = client.post("/rest/1/devtoken/user.get.json",
                           data="FILTER[0][ID]=2&FILTER[LOGIC]=OR&FILTER[NAME]=Anna",
                           content_type="application/x-www-form-urlencoded")
    assert ids(response.get_json()["result"]) == [1]


def test_department_names_filter_only_user_search(default_portal):
    """userGet adds UF_DEPARTMENT_NAME to the allowed names for user.search only."""
    assert ids(default_portal("user.search", FILTER={"UF_DEPARTMENT_NAME": "Eng"})[
        "result"]) == [2]
    listed = default_portal("user.get", FILTER={"UF_DEPARTMENT_NAME": "Engineering"})
    assert ids(listed["result"]) == [1, 2, 3] and listed["total"] == 3  # ignored
    by_prefix = default_portal("user.get", FILTER={"%UF_DEPARTMENT_NAME": "Sales"})
    assert ids(by_prefix["result"]) == [1, 2, 3]


def test_an_empty_user_list_in_a_batch_has_no_total(big_portal):
    body = big_portal.post("/rest/1/bigtoken/batch.json", json={"cmd": {
        "none": "user.get?FILTER[ID]=9999",
        "past": "user.get?start=500",
        "some": "user.get?FILTER[ID]=7",
    }}).get_json()["result"]
    assert body["result"]["none"] == [] and body["result"]["past"] == []
    assert body["result_total"] == {"some": 1}
    assert body["result_next"] == []
