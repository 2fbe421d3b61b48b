"""The docs' own examples (api-reference/user/, departments/), replayed as the docs write them
against a portal holding the docs' users and departments, with the docs' answers asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from b24emu import create_app
from b24emu.settings import Settings

DOCS_PORTAL = Path(__file__).parent / "data" / "docs_portal.json"

# user-get.md "Response Handling" (and user-search.md's, the same two users).
VADIM = {
    "ID": "1", "ACTIVE": True, "NAME": "Vadim", "LAST_NAME": "Valeev", "SECOND_NAME": "",
    "EMAIL": "v.r.valeev@bitrix.com", "LAST_LOGIN": "2024-07-25T13:06:54+00:00",
    "DATE_REGISTER": "2024-07-15T00:00:00+00:00", "TIME_ZONE": "", "IS_ONLINE": "Y",
    "TIMESTAMP_X": {}, "LAST_ACTIVITY_DATE": {}, "PERSONAL_GENDER": "", "PERSONAL_WWW": "",
    "PERSONAL_BIRTHDAY": "2018-07-14T00:00:00+00:00", "PERSONAL_MOBILE": "",
    "PERSONAL_CITY": "", "WORK_PHONE": "", "WORK_POSITION": "", "UF_EMPLOYMENT_DATE": "",
    "UF_DEPARTMENT": [1], "USER_TYPE": "employee",
}
JOHN = {
    "ID": "3", "ACTIVE": True, "NAME": "John", "LAST_NAME": "Smith", "EMAIL": "test@gmail.com",
    "LAST_LOGIN": "2024-07-24T09:01:55+00:00", "DATE_REGISTER": "2024-07-22T00:00:00+00:00",
    "IS_ONLINE": "N", "TIMESTAMP_X": {}, "LAST_ACTIVITY_DATE": {}, "PERSONAL_GENDER": "",
    "PERSONAL_BIRTHDAY": "", "WORK_POSITION": "", "UF_EMPLOYMENT_DATE": "",
    "UF_DEPARTMENT": [1], "USER_TYPE": "employee",
}


@pytest.fixture
def docs(tmp_path, clock):
    """The emulator serving the docs' portal; call(method, json body) → the response."""
    settings = Settings(db=str(tmp_path / "docs.sqlite3"), fixtures=str(DOCS_PORTAL))
    client = create_app(settings, clock=clock).test_client()

    def call(method: str, body: dict | str, code: str = "devtoken", user: int = 1):
        if isinstance(body, str):
            return client.post(f"/rest/{user}/{code}/{method}", data=body,
                               content_type="application/json")
        return client.post(f"/rest/{user}/{code}/{method}", json=body)

    return call


def test_user_get_answer_is_the_docs_answer(docs):
    body = docs("user.get", {}).get_json()
    assert body["result"] == [VADIM, JOHN]
    assert body["total"] == 2
    # the same fields in the same order as the docs' example
    assert [list(user) for user in body["result"]] == [list(VADIM), list(JOHN)]


def test_user_get_first_example_start_10_skips_ten_users(docs):
    """user.get reads `start` as the ORM's offset (getNavData($start, true)): the docs' first
    example (`start` 10) skips ten users, so on this two-user portal it finds nobody; the same
    request from 0 answers the docs' two users."""
    body = docs("user.get", '{"UF_DEPARTMENT": 1, "SORT": "ID", "ORDER": "asc", '
                            '"start": 10}').get_json()
    assert body["result"] == []
    body = docs("user.get", '{"UF_DEPARTMENT": 1, "SORT": "ID", "ORDER": "asc", '
                            '"start": 0}').get_json()
    assert body["result"] == [VADIM, JOHN]
    assert body["total"] == 2 and "next" not in body
    skipped = docs("user.get", '{"start": 1}').get_json()
    assert skipped["result"] == [JOHN] and skipped["total"] == 2


@pytest.mark.parametrize(("body", "expected"), [
    ('{"filter":{"NAME":"Iv%"}}', []),  # "Filtering by a name starting with ..." (nobody here)
    ('{"filter":{"NAME":"Jo%"}}', [JOHN]),  # the same form, a name the portal has
    ('{"filter":{"!%LAST_NAME":"an"}}', [VADIM, JOHN]),
    ('{"filter":{"!%LAST_NAME":"ee"}}', [JOHN]),
    ('{"filter":{"@PERSONAL_CITY":["New York","Los Angeles"]}}', []),
])
def test_user_get_filter_examples(docs, body, expected):
    answer = docs("user.get", body).get_json()
    assert answer["result"] == expected
    assert answer.get("total") == (len(expected) or None)  # an empty page sends no total


def test_user_search_example(docs):
    body = docs("user.search", '{"UF_DEPARTMENT": 1, "SORT": "ID", "ORDER": "asc", '
                               '"start": 10}').get_json()
    assert body["result"] == []  # ten users skipped, as user.get
    body = docs("user.search", '{"UF_DEPARTMENT": 1, "SORT": "ID", "ORDER": "asc"}').get_json()
    assert body["result"] == [VADIM, JOHN] and body["total"] == 2


def test_user_current_example(docs):
    """user-current.md (called with `{}` by John): the docs' fields with the docs' values.
    The example predates USER_TYPE and shows LAST_ACTIVITY_DATE as a string; b24emu answers
    every user method like user.get's newer example (`{}`), and John is offline here."""
    result = docs("user.current", "{}", code="johntoken", user=3).get_json()["result"]
    documented = {"ID": "3", "ACTIVE": True, "NAME": "John", "LAST_NAME": "Smith",
                  "EMAIL": "test@gmail.com", "DATE_REGISTER": "2024-07-22T00:00:00+00:00",
                  "PERSONAL_GENDER": "", "PERSONAL_BIRTHDAY": "", "WORK_POSITION": "",
                  "UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": [1]}
    assert {key: result[key] for key in documented} == documented
    docs_keys = ["ID", "ACTIVE", "NAME", "LAST_NAME", "EMAIL", "LAST_LOGIN", "DATE_REGISTER",
                 "IS_ONLINE", "LAST_ACTIVITY_DATE", "PERSONAL_GENDER", "PERSONAL_BIRTHDAY",
                 "WORK_POSITION", "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT"]
    assert [key for key in result if key in docs_keys] == docs_keys  # the docs' order
    assert result == JOHN


# department-get.md "Response Handling": five departments under department 1.
DOCS_DEPARTMENTS = [
    {"ID": "15", "NAME": "R&D", "SORT": 500, "PARENT": "1"},
    {"ID": "2", "NAME": "Accounting", "SORT": 500, "PARENT": "1"},
    {"ID": "4", "NAME": "Marketing and Advertising Department", "SORT": 500, "PARENT": "1"},
    {"ID": "3", "NAME": "Sales Department", "SORT": 500, "PARENT": "1"},
    {"ID": "17", "NAME": "Legal Department", "SORT": 500, "PARENT": "1"},
]


def test_department_get_example(docs):
    body = docs("department.get", '{"sort": "NAME", "order": "DESC", "PARENT": 1}').get_json()
    assert sorted(body["result"], key=lambda d: int(d["ID"])) == sorted(
        DOCS_DEPARTMENTS, key=lambda d: int(d["ID"]))
    assert body["total"] == 5
    # sorted as asked: NAME descending
    assert [d["NAME"] for d in body["result"]] == [
        "Sales Department", "R&D", "Marketing and Advertising Department", "Legal Department",
        "Accounting"]


def test_department_get_root_and_head(docs):
    body = docs("department.get", {"ID": 1}).get_json()
    assert body["result"] == [{"ID": "1", "NAME": "Company", "SORT": 500, "UF_HEAD": "1"}]
    assert docs("department.get", {}).get_json()["total"] == 6


def test_department_get_filters_sorts_and_pages(docs):
    def ids(body):
        return [int(department["ID"]) for department in body["result"]]

    assert ids(docs("department.get", {"ID": [2, 3]}).get_json()) == [2, 3]
    assert ids(docs("department.get", {"NAME": "R&D"}).get_json()) == [15]
    assert ids(docs("department.get", {"UF_HEAD": 1}).get_json()) == [1]
    assert ids(docs("department.get", {"sort": "ID", "order": "DESC"}).get_json()) == [
        17, 15, 4, 3, 2, 1]
    # b24pysdk's as_list_fast: `>ID` at the top level, SORT/ORDER, start=-1
    fast = docs("department.get", {">ID": 3, "SORT": "ID", "ORDER": "ASC", "start": -1})
    assert ids(fast.get_json()) == [4, 15, 17]
    assert list(fast.get_json()) == ["result", "total", "time"]  # no count: total 0, no next
    assert fast.get_json()["total"] == 0


def test_department_get_needs_the_department_scope(docs):
    reply = docs("department.get", {}, code="johntoken", user=3)  # scope: user
    assert reply.status_code == 401
    assert reply.get_json()["error"] == "insufficient_scope"
