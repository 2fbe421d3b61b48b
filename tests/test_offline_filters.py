"""event.offline.get and event.offline.list check `filter` and `order` as the portal's
IRestService::sanitizeFilter/sanitizeOrder do (Api\\Event): operations '', '=', '>', '<', '>=',
'<=', '@', '%' only, the method's fields only, ERROR_ARGUMENT with HTTP 400 otherwise, and
nothing is reserved when the request is refused."""

from __future__ import annotations

import pytest
from b24emu.events import fire

from tests.conftest import queue_app

METHODS = ["event.offline.get", "event.offline.list"]


@pytest.fixture
def app(settings, clock, tmp_path):
    return queue_app(settings, clock, tmp_path)


@pytest.fixture
def call(client):
    def call(method, **params):
        reply = client.post(f"/rest/{method}.json", json={"auth": "admintoken", **params})
        return reply.status_code, reply.get_json()
    return call


@pytest.fixture
def queue(call, emulator, clock):
    """Three records: deals 5, 6 and 7, ten seconds apart (ids 1, 2, 3)."""
    status, body = call("event.bind", event="ONCRMDEALUPDATE", event_type="offline")
    assert (status, body["result"]) == (200, True)
    for deal in (5, 6, 7):
        fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": deal}}, 1)
        clock.advance(10)
    return listed(call)


def listed(call, **params) -> list[dict]:
    status, body = call("event.offline.list", **params)
    assert status == 200, body
    return body["result"]


def ids(records) -> list[int]:
    return [int(record["ID"]) for record in records]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("params", "description"), [
    ({"filter": "x"}, "The filter is not an array."),
    ({"filter": ""}, "The filter is not an array."),
    ({"filter": 5}, "The filter is not an array."),
    ({"filter": {"!ID": 1}}, "Filter operation not allowed: !"),
    ({"filter": {"!=ID": 1}}, "Filter operation not allowed: !="),
    ({"filter": {"!@ID": [1]}}, "Filter operation not allowed: !@"),
    ({"filter": {"><ID": [1, 2]}}, "Filter operation not allowed: ><"),
    ({"filter": {"=%EVENT_NAME": "ON%"}}, "Filter operation not allowed: =%"),
    ({"filter": {"FOO": 1}}, "Filter field not allowed: FOO"),
    ({"filter": {">=foo": 1}}, "Filter field not allowed: FOO"),  # keys are upper-cased
    ({"filter": {"LOGIC": "OR"}}, "Filter field not allowed: LOGIC"),  # no sub-filters
    ({"filter": [{"ID": 1}]}, "Filter operation not allowed: 0"),
    ({"order": "x"}, "The order is not an array."),
    ({"order": ""}, "The order is not an array."),
    ({"order": {"ID": "SIDEWAYS"}}, "Order direction should be one of {ASC|DESC}"),
    ({"order": {"FOO": "ASC"}}, "Order field not allowed: FOO"),
    ({"order": ["FOO"]}, "Order field not allowed: FOO"),
])
def test_refused_filters_and_orders(call, queue, method, params, description):
    status, body = call(method, **params)
    assert (status, body) == (400, {"error": "ERROR_ARGUMENT",
                                    "error_description": description})


def test_a_refused_get_reserves_and_deletes_nothing(call, queue):
    assert call("event.offline.get", filter={"!ID": 1})[0] == 400
    assert call("event.offline.get", order={"ID": "UP"})[0] == 400
    assert [(record["ID"], record["PROCESS_ID"]) for record in listed(call)] == [
        ("1", ""), ("2", ""), ("3", "")]


def test_get_knows_fewer_fields_than_list(call, queue):
    """event.offline.get: ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID; .list adds PROCESS_ID, ERROR."""
    assert call("event.offline.get", filter={"ERROR": 0})[1]["error_description"] == (
        "Filter field not allowed: ERROR")
    assert call("event.offline.get", order={"PROCESS_ID": "ASC"})[1]["error_description"] == (
        "Order field not allowed: PROCESS_ID")
    assert ids(listed(call, filter={"ERROR": 0}, order={"PROCESS_ID": "ASC"})) == [1, 2, 3]


@pytest.mark.parametrize(("filter_", "expected"), [
    ({"@ID": [1, 3]}, [1, 3]),
    ({"@ID": ["3", "9"]}, [3]),
    ({"%EVENT_NAME": "dealupd"}, [1, 2, 3]),  # contains, case-insensitively
    ({"%EVENT_NAME": "DEALADD"}, []),
    ({"ID": [2, 3]}, [2, 3]),  # an array value: IN
    ({"=ID": 2}, [2]),
    ({">ID": 1, "<=ID": 2}, [2]),
    ({"<TIMESTAMP_X": "2026-01-01T00:00:15+00:00"}, [1, 2]),
])
def test_in_and_contains_filter(call, queue, filter_, expected):
    assert ids(listed(call, filter=filter_)) == expected


def test_message_id_contains(call, queue):
    third = queue[2]["MESSAGE_ID"]
    assert ids(listed(call, filter={"%MESSAGE_ID": third[4:12]})) == [3]


def test_get_reserves_what_its_filter_and_order_select(call, queue):
    status, body = call("event.offline.get", clear=0, limit=1, filter={"@ID": [1, 3]},
                        order={"ID": "DESC"})
    assert status == 200
    got = body["result"]
    assert ids(got["events"]) == [3]
    assert {record["ID"]: record["PROCESS_ID"] for record in listed(call)} == {
        "1": "", "2": "", "3": got["process_id"]}
    # the process's records, read again with the same filter
    status, body = call("event.offline.get", process_id=got["process_id"], clear=0,
                        filter={"%EVENT_NAME": "DEAL"})
    assert ids(body["result"]["events"]) == [3]
    # the default order is TIMESTAMP_X ascending; clear=1 deletes what it returns
    status, body = call("event.offline.get", limit=5)
    assert ids(body["result"]["events"]) == [1, 2] and body["result"]["process_id"] is None
    assert ids(listed(call)) == [3]


def test_list_reads_start_as_an_offset_and_counts_with_start_minus_1(call, queue):
    status, body = call("event.offline.list", start=1)
    assert (ids(body["result"]), body["total"], "next" in body) == ([2, 3], 3, False)
    status, body = call("event.offline.list", start=-1)  # getNavData leaves no offset: 0
    assert (ids(body["result"]), body["total"]) == ([1, 2, 3], 3)
