"""Faults armed through the control API: which calls they hit and what the client sees."""

from __future__ import annotations

import pytest
from b24emu import create_app

API = "/_emulator/faults"
ADD = "im.notify.personal.add"
HI = {"USER_ID": 2, "MESSAGE": "hi"}


def arm(client, **fault) -> dict:
    reply = client.post(API, json=fault)
    assert reply.status_code == 201, reply.get_json()
    return reply.get_json()


@pytest.fixture
def unlimited(settings, clock):
    """An app without the request-rate limit (tests that call more than 50 times)."""
    app = create_app(settings.with_overrides(rate_limit="off"), clock=clock)
    return app.test_client()


def test_next_n_calls_fail_then_it_disarms(client, rest):
    fault = arm(client, method=ADD, error="QUERY_LIMIT_EXCEEDED", times=2)
    assert fault["status"] == 503 and fault["description"] == "Too many requests"
    assert fault["remaining"] == 2 and fault["hits"] == 0 and fault["probability"] == 1
    for _ in range(2):
        reply = rest.webhook(ADD, HI)
        assert reply.status_code == 503
        assert reply.get_json() == {"error": "QUERY_LIMIT_EXCEEDED",
                                    "error_description": "Too many requests"}
    assert rest.webhook(ADD, HI).status_code == 200
    assert client.get(API).get_json() == {"items": []}
    assert client.get("/_emulator/notifications/count").get_json() == {"count": 1}


def test_until_cleared_counts_hits(client, rest):
    fault = arm(client, method=ADD, error="OPERATION_TIME_LIMIT")
    assert fault["remaining"] is None and fault["status"] == 429
    for _ in range(3):
        reply = rest.webhook(ADD, HI)
        assert reply.status_code == 429
        assert reply.get_json()["error_description"] == (
            "Method is blocked due to operation time limit.")
    (listed,) = client.get(API).get_json()["items"]
    assert listed["hits"] == 3 and listed["remaining"] is None and listed["id"] == fault["id"]
    assert client.delete(f"{API}/{fault['id']}").get_json() == {"deleted": 1}
    assert client.delete(f"{API}/{fault['id']}").status_code == 404
    assert rest.webhook(ADD, HI).status_code == 200


def test_clear_all(client, rest):
    arm(client, method=ADD, error="INTERNAL_SERVER_ERROR")
    arm(client, method="*", error="OVERLOAD_LIMIT")
    assert client.delete(API).get_json() == {"deleted": 2}
    assert rest.webhook(ADD, HI).status_code == 200


def test_probability_zero_never_one_always(unlimited):
    arm(unlimited, method="server.time", error="INTERNAL_SERVER_ERROR", probability=0)
    for _ in range(30):
        assert unlimited.get("/rest/1/devtoken/server.time").status_code == 200
    unlimited.delete(API)
    arm(unlimited, method="server.time", error="INTERNAL_SERVER_ERROR", probability=1)
    for _ in range(30):
        reply = unlimited.get("/rest/1/devtoken/server.time")
        assert reply.status_code == 500
        assert reply.get_json() == {"error": "INTERNAL_SERVER_ERROR",
                                    "error_description": "Internal server error"}


def test_latency_slows_a_successful_call(client, rest):
    arm(client, method=ADD, latency=0.05, times=1)
    reply = rest.webhook(ADD, HI)
    assert reply.status_code == 200
    (entry,) = client.get("/_emulator/journal").get_json()["items"]
    assert entry["status"] == 200 and entry["duration"] >= 0.05


def test_latency_and_error_together(client, rest):
    arm(client, method=ADD, error="QUERY_LIMIT_EXCEEDED", latency=0.05, times=1)
    assert rest.webhook(ADD, HI).status_code == 503
    (entry,) = client.get("/_emulator/journal").get_json()["items"]
    assert entry["error"] == "QUERY_LIMIT_EXCEEDED" and entry["duration"] >= 0.05


def test_a_fault_for_one_method_leaves_others_alone(client, rest):
    arm(client, method=ADD, error="INTERNAL_SERVER_ERROR")
    assert rest.webhook("server.time").status_code == 200
    assert rest.webhook("im.notify.system.add", HI).status_code == 200
    assert rest.webhook(ADD, HI).status_code == 500


def test_star_hits_every_method(client, rest):
    arm(client, method="*", error="OVERLOAD_LIMIT")
    for method in ("server.time", ADD, "im.notify.system.add", "user.current"):
        reply = rest.webhook(method, HI)
        assert reply.status_code == 503
        assert reply.get_json() == {"error": "OVERLOAD_LIMIT",
                                    "error_description": "REST API is blocked due to overload"}


def test_faults_fire_after_auth_and_scope(client, rest):
    arm(client, method="*", error="INTERNAL_SERVER_ERROR")
    assert rest.webhook(ADD, HI, code="wrong").get_json()["error"] == "INVALID_CREDENTIALS"
    denied = rest.webhook(ADD, HI, user=2, code="noimtoken")
    assert denied.get_json()["error"] == "insufficient_scope"
    assert rest.webhook("no.such.method").status_code == 404
    assert client.get(API).get_json()["items"][0]["hits"] == 0


def test_inside_a_batch_each_command_counts(client, rest):
    arm(client, method=ADD, error="QUERY_LIMIT_EXCEEDED", times=2)
    reply = rest.webhook("batch", {"halt": 0, "cmd": {
        "a": f"{ADD}?USER_ID=2&MESSAGE=one", "b": f"{ADD}?USER_ID=2&MESSAGE=two",
        "c": f"{ADD}?USER_ID=2&MESSAGE=three", "t": "server.time"}})
    assert reply.status_code == 200
    result = reply.get_json()["result"]
    assert set(result["result_error"]) == {"a", "b"}
    assert result["result_error"]["a"] == {"error": "QUERY_LIMIT_EXCEEDED",
                                           "error_description": "Too many requests"}
    assert isinstance(result["result"]["c"], int) and "t" in result["result"]
    assert client.get(API).get_json() == {"items": []}


def test_a_batch_counts_as_one_call(client, rest):
    arm(client, method="batch", error="INTERNAL_SERVER_ERROR", times=1)
    cmd = {"cmd": {"a": f"{ADD}?USER_ID=2&MESSAGE=one"}}
    assert rest.webhook("batch", cmd).status_code == 500
    assert rest.webhook("batch", cmd).status_code == 200
    assert client.get("/_emulator/notifications/count").get_json() == {"count": 1}


def test_star_stops_a_batch_before_its_commands(client, rest):
    arm(client, method="*", error="INTERNAL_SERVER_ERROR", times=1)
    cmd = {"cmd": {"a": f"{ADD}?USER_ID=2&MESSAGE=one", "b": f"{ADD}?USER_ID=2&MESSAGE=two"}}
    assert rest.webhook("batch", cmd).status_code == 500  # the batch itself is the one call
    result = rest.webhook("batch", cmd).get_json()["result"]
    assert result["result_error"] == [] or not result["result_error"]
    assert client.get("/_emulator/notifications/count").get_json() == {"count": 2}


@pytest.mark.parametrize(("code", "status", "description"), [
    ("expired_token", 401, "The access token provided has expired"),
    ("invalid_token", 401, "Unable to get application by token"),
    ("NO_AUTH_FOUND", 401, "Wrong authorization data"),
    ("INVALID_CREDENTIALS", 401, "Invalid request credentials"),
    ("insufficient_scope", 401,
     "The request requires higher privileges than provided by the webhook token"),
    ("ERROR_METHOD_NOT_FOUND", 404, "Method not found!"),
    # the docs' system errors (_includes/system-errors.md), as the table writes them
    ("INTERNAL_SERVER_ERROR", 500, "Internal server error"),
    ("ERROR_UNEXPECTED_ANSWER", 500, "Server returned an unexpected response"),
    ("QUERY_LIMIT_EXCEEDED", 503, "Too many requests"),
    ("ERROR_BATCH_METHOD_NOT_ALLOWED", 405, "Method is not allowed for batch usage"),
    ("ERROR_BATCH_LENGTH_EXCEEDED", 400, "Max batch length exceeded"),
    ("INVALID_REQUEST", 400, "Https required"),
    ("OVERLOAD_LIMIT", 503, "REST API is blocked due to overload"),
    ("ACCESS_DENIED", 403, "REST API is available only on commercial plans"),
    ("ERROR_MANIFEST_IS_NOT_AVAILABLE", 404, "Manifest is not available"),
    ("user_access_error", 403, "The user does not have access to the application"),
    ("PORTAL_DELETED", 500, "Portal was deleted"),
    ("USER_ID_EMPTY", 400, "User ID can't be empty"),
    ("MY_OWN_CODE", 400, ""),
])
def test_known_codes_get_the_portals_description_and_status(client, rest, code, status,
                                                            description):
    fault = arm(client, method=ADD, error=code, times=1)
    assert (fault["status"], fault["description"]) == (status, description)
    reply = rest.webhook(ADD, HI)
    assert reply.status_code == status
    assert reply.get_json() == {"error": code, "error_description": description}


def test_explicit_description_and_status_win(client, rest):
    arm(client, method=ADD, error="expired_token", description="custom", status=403, times=1)
    reply = rest.webhook(ADD, HI)
    assert reply.status_code == 403
    assert reply.get_json() == {"error": "expired_token", "error_description": "custom"}


def test_oauth_sees_the_fault_too(client, rest):
    arm(client, method=ADD, error="expired_token", times=1)
    reply = rest.oauth(ADD, HI)
    assert reply.status_code == 401 and reply.get_json()["error"] == "expired_token"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "method"),
    ({"method": ADD}, "error"),
    ({"method": "no.such.method", "error": "X"}, "method"),
    ({"method": "bad method!", "error": "X"}, "method"),
    ({"method": ADD, "error": "X", "probability": 2}, "probability"),
    ({"method": ADD, "error": "X", "probability": "half"}, "probability"),
    ({"method": ADD, "error": "X", "status": 99}, "status"),
    ({"method": ADD, "error": "X", "status": "500"}, "status"),
    ({"method": ADD, "error": "X", "times": 0}, "times"),
    ({"method": ADD, "error": "X", "times": 1.5}, "times"),
    ({"method": ADD, "latency": -1}, "latency"),
    ({"method": ADD, "latency": 301}, "latency"),
    ({"method": ADD, "error": "X", "colour": "red"}, "colour"),
    ({"method": ADD, "error": "' OR 1=1"}, "error"),
])
def test_bad_fault_bodies(client, rest, body, field):
    reply = client.post(API, json=body)
    assert reply.status_code == 400, reply.get_json()
    assert reply.get_json()["error"] == "invalid_parameter"
    assert reply.get_json()["error_description"].startswith(f"{field}:")
    assert client.get(API).get_json() == {"items": []}
    assert rest.webhook(ADD, HI).status_code == 200


def test_bad_json(client):
    for data in (b"", b"{", b"[]"):
        reply = client.post(API, data=data, content_type="application/json")
        assert reply.status_code == 400 and reply.get_json()["error"] == "invalid_parameter"
    assert client.delete(f"{API}/abc").status_code == 404
