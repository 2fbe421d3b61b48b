"""The control API as a whole: its OpenAPI document, its access rule, and a real server."""

from __future__ import annotations

import re

import pytest
import requests
from b24emu import create_app
from b24emu.control.openapi import DOCUMENT

from tests.test_server import Server

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _normalize(path: str) -> str:
    """`/x/<int:id>/y` and `/x/{id}/y` both as `/x/{}/y`."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def test_openapi_lists_exactly_the_routes(client, app):
    served = client.get("/_emulator/openapi.json")
    assert served.status_code == 200 and served.get_json() == DOCUMENT
    assert DOCUMENT["openapi"].startswith("3.1")
    routes = {(method.lower(), _normalize(rule.rule)) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/_emulator/")
              for method in rule.methods - IGNORED_METHODS}
    documented = {(method, _normalize(path)) for path, item in DOCUMENT["paths"].items()
                  for method in item}
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes - {("get", "/_emulator/ui/"), ("get", "/_emulator/ui/events")} \
        == set(), "documented paths that do not exist"
    assert ("get", "/_emulator/ui/") in documented
    assert ("get", "/_emulator/ui/events") in documented


def test_openapi_references_resolve():
    schemas = DOCUMENT["components"]["schemas"]

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOCUMENT)
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            assert operation["responses"], path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path


ENDPOINTS = [("get", "/_emulator/notifications"), ("get", "/_emulator/journal"),
             ("get", "/_emulator/portals"), ("get", "/_emulator/clock"),
             ("get", "/_emulator/faults"), ("get", "/_emulator/openapi.json"),
             ("get", "/_emulator/notifications/count")]


@pytest.fixture
def token_client(settings, clock):
    return create_app(settings.with_overrides(control_token="s3cret"), clock=clock).test_client()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_token_is_required_when_set(token_client, method, path):
    call = getattr(token_client, method)
    missing = call(path)
    assert missing.status_code == 401 and missing.get_json()["error"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="b24emu"'
    wrong = call(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert call(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_token_guards_writes_too(token_client):
    refused = token_client.post("/_emulator/faults", json={"method": "*", "error": "X"})
    assert refused.status_code == 401
    assert token_client.delete("/_emulator/notifications").status_code == 401
    armed = token_client.get("/_emulator/faults", headers={"Authorization": "Bearer s3cret"})
    assert armed.get_json() == {"items": []}
    assert token_client.get("/_emulator/health").status_code == 200


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_remote_clients_are_refused_without_a_token(client, method, path):
    reply = getattr(client, method)(path, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert reply.status_code == 403 and reply.get_json()["error"] == "forbidden"
    assert getattr(client, method)(path).status_code == 200  # loopback


def test_health_stays_open(client):
    remote = client.get("/_emulator/health", environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert remote.status_code == 200 and remote.get_json()["status"] == "ready"


def test_control_calls_are_never_rate_limited(client, rest):
    client.post("/_emulator/clock", json={"freeze": True})
    for _ in range(50):
        rest.webhook("server.time")
    assert rest.webhook("server.time").status_code == 503
    for _ in range(60):
        assert client.get("/_emulator/journal?limit=1").status_code == 200


def test_a_real_server_shares_faults_and_clock_across_workers(tmp_path):
    """Unmodified `requests` against `b24emu serve` (2 workers): exact body and status."""
    server = Server(tmp_path / "db.sqlite3", "fixtures/default.json",
                    extra_env={"B24EMU_RATE_LIMIT": "off"})
    hook = f"{server.base}/rest/1/devtoken/"
    try:
        armed = requests.post(f"{server.base}/_emulator/faults", timeout=5, json={
            "method": "im.notify.personal.add", "error": "QUERY_LIMIT_EXCEEDED", "times": 3})
        assert armed.status_code == 201
        for _ in range(3):
            reply = requests.post(hook + "im.notify.personal.add", timeout=5,
                                  json={"USER_ID": 2, "MESSAGE": "hi"})
            assert reply.status_code == 503
            assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
            assert reply.json() == {"error": "QUERY_LIMIT_EXCEEDED",
                                    "error_description": "Too many requests"}
        assert requests.post(hook + "im.notify.personal.add", timeout=5,
                             json={"USER_ID": 2, "MESSAGE": "hi"}).status_code == 200
        frozen = requests.post(f"{server.base}/_emulator/clock", timeout=5,
                               json={"set": "2031-02-03T04:05:06Z", "freeze": True}).json()
        assert frozen["iso"] == "2031-02-03T04:05:06+00:00"
        for _ in range(8):  # whichever worker answers, it reads the shared clock
            answer = requests.get(hook + "server.time.json", timeout=5).json()
            assert answer["time"]["date_start"] == "2031-02-03T04:05:06+00:00"
        journal = requests.get(f"{server.base}/_emulator/journal?status=503", timeout=5).json()
        assert journal["total"] == 3
        assert journal["items"][0]["path"] == "/rest/1/dev***/im.notify.personal.add"
        listed = requests.get(f"{server.base}/_emulator/portals", timeout=5).json()
        url = listed["items"][0]["webhooks"][0]["url"]
        assert url == f"{server.base}/rest/1/devtoken/"
        assert requests.get(url + "server.time", timeout=5).status_code == 200
    finally:
        server.stop()
