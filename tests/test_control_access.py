"""Nobody but the tester drives the emulator: no cross-site writes, no DNS rebinding.

The first half checks each rule of `b24emu.control.access` through Flask's test client; the
second replays every attack of the security report over real HTTP against a running emulator and
checks that it is refused and that nothing changed.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests
from b24emu import create_app
from b24emu.control import access
from b24emu.testing import client as control_client
from b24emu.testing.server import RunningEmulator
from flask import request
from werkzeug.serving import make_server

from tests.conftest import TEST_PORTAL

HEADER = {"X-B24EMU-Control": "1"}
EVIL = "https://evil.example"
ACME = {"name": "acme", "domain": "acme.localhost", "users": [{"id": 1, "name": "Ada"}],
        "webhooks": [{"user_id": 1, "code": "acmetoken", "scopes": ["im"]}]}
# Every state-changing endpoint, with a body that would do harm if it were accepted.
WRITES = [
    ("post", "/_emulator/reset", {"scope": "data"}),
    ("post", "/_emulator/faults", {"method": "*", "error": "QUERY_LIMIT_EXCEEDED"}),
    ("post", "/_emulator/clock", {"set": "2100-01-01T00:00:00Z", "freeze": True}),
    ("post", "/_emulator/seed", {"name": "default", "users": [{"id": 1}], "webhooks": [
        {"user_id": 1, "code": "evilcode", "scopes": ["im"]}]}),
    ("post", "/_emulator/notifications/read", {"read": True}),
    ("post", "/_emulator/notifications/1/read", {"read": True}),
    ("delete", "/_emulator/notifications", None),
    ("delete", "/_emulator/notifications/1", None),
    ("delete", "/_emulator/journal", None),
    ("delete", "/_emulator/faults", None),
    ("delete", "/_emulator/faults/1", None),
    ("delete", "/_emulator/clock", None),
    ("post", "/_emulator/stubs", {"method": "user.get", "override": True, "result": []}),
    ("delete", "/_emulator/stubs", None),
    ("delete", "/_emulator/stubs/1", None),
    ("post", "/_emulator/events", {"event": "ONAPPINSTALL", "data": {"evil": 1}}),
    ("post", "/_emulator/apps/local.emulator.app/install", {}),
]


def test_every_write_endpoint_is_attacked_above(app):
    """A new state-changing endpoint cannot slip past the tests above: each one is in WRITES."""
    adapter = app.url_map.bind("localhost")
    covered = {(method.upper(), adapter.match(path, method=method.upper())[0])
               for method, path, _ in WRITES}
    writes = {(method, rule.endpoint) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/_emulator")
              for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}}
    assert writes - covered == set()


@pytest.fixture
def bare(app):
    """A test client that sends what a web page could: no control header."""
    return app.test_client()


def state(client) -> dict:
    """Everything an attack could change, read through the control API."""
    return {name: client.get(f"/_emulator/{name}").get_json()
            for name in ("notifications", "faults", "journal", "portals", "stubs",
                         "events/deliveries")} | {
        "clock": {key: value for key, value in client.get("/_emulator/clock").get_json().items()
                  if key in ("frozen", "offset")}}


@pytest.fixture
def stored(client, rest):
    """One notification, one journal entry, one fault (for DELETE /faults/1) in place."""
    rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "keep me"})
    armed = client.post("/_emulator/faults", json={"method": "user.get", "error": "X"})
    assert armed.status_code == 201
    stub = client.post("/_emulator/stubs", json={"method": "crm.deal.get", "result": {"ID": 1}})
    assert stub.status_code == 201, stub.get_json()
    return state(client)


# --- writes: only requests a web page cannot make -------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_cross_site_simple_request_changes_nothing(bare, client, stored, method, path, body):
    """What `fetch(url, {method: "POST", mode: "no-cors", body})` or a form sends: 403."""
    data = json.dumps(body) if body is not None else None
    for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://localhost:3000"}, {"Sec-Fetch-Site": "same-site"}):
        reply = getattr(bare, method)(path, data=data, headers={**headers, **HEADER},
                                      content_type="text/plain")
        assert reply.status_code == 403, (headers, reply.get_json())
        assert reply.get_json()["error"] == "forbidden_origin"
        assert "Cross-origin requests cannot change the emulator" in (
            reply.get_json()["error_description"])
    assert state(client) == stored


@pytest.mark.parametrize(("method", "path", "body"), [w for w in WRITES if w[2] is not None])
@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None])
def test_a_body_that_is_not_json_is_415(bare, client, stored, method, path, body, content_type):
    """Without an Origin (curl, a script): the simple content types a page could send are 415."""
    headers = {"Content-Type": content_type} if content_type else {}
    reply = getattr(bare, method)(path, data=json.dumps(body), headers={**headers, **HEADER})
    assert reply.status_code == 415
    assert reply.get_json()["error"] == "unsupported_media_type"
    assert state(client) == stored


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_bodiless_write_needs_the_control_header(bare, client, stored, method, path, body):
    reply = getattr(bare, method)(path)
    assert reply.status_code == 403
    assert reply.get_json() == {"error": "control_header_required", "error_description": (
        f"A {method.upper()} without a body needs the header X-B24EMU-Control: 1 "
        "(the control client, the CLI and the inbox page send it)")}
    assert state(client) == stored


def test_json_from_the_emulators_own_origin_is_accepted(bare, client, stored):
    """The inbox page's own requests (same origin, JSON) and tools without an Origin work."""
    for origin in ("http://localhost", "http://localhost:80", None):
        headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"} if origin else {}
        reply = bare.post("/_emulator/notifications/read", json={"read": True}, headers=headers)
        assert reply.status_code == 200, reply.get_json()
    assert bare.post("/_emulator/reset", json={"scope": "data"}).status_code == 200
    assert bare.delete("/_emulator/faults", headers=HEADER).get_json() == {"deleted": 1}
    assert client.get("/_emulator/notifications/count").get_json() == {"count": 0}


@pytest.mark.parametrize("origin", ["https://localhost", "http://localhost:8080", "null",
                                    "http://localhost.evil.example", "http://localhost:notaport",
                                    "http://localhost/path"])
def test_only_the_exact_own_origin_counts(bare, origin):
    reply = bare.post("/_emulator/faults", json={"method": "*", "error": "X"},
                      headers={"Origin": origin})
    assert reply.status_code == 403 and reply.get_json()["error"] == "forbidden_origin"
    assert bare.get("/_emulator/faults").get_json() == {"items": []}


def test_reads_stay_simple(bare):
    """GET needs no header (curl, a browser's address bar); only the Host rule applies."""
    assert bare.get("/_emulator/notifications").status_code == 200
    assert bare.get("/_emulator/notifications", headers={"Origin": EVIL}).status_code == 200


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site"}])
@pytest.mark.parametrize("path", ["/_emulator/ui/events", "/_emulator/ui/events/"])
def test_a_page_elsewhere_cannot_hold_an_event_stream_open(bare, headers, path):
    """An EventSource holds a connection for minutes: a tab on another site may not open one,
    however the URL is spelled."""
    reply = bare.get(f"{path}?recipient=1", headers=headers)
    try:
        assert reply.status_code == 403 and reply.get_json()["error"] == "forbidden_origin"
    finally:
        reply.close()


def test_with_a_token_the_token_is_the_rule_for_origins(settings, clock):
    """A page elsewhere cannot learn the token; the body rule still holds."""
    token_client = create_app(settings.with_overrides(control_token="s3cret"),
                              clock=clock).test_client()
    bearer = {"Authorization": "Bearer s3cret"}
    reply = token_client.post("/_emulator/faults", json={"method": "*", "error": "X"},
                              headers={**bearer, "Origin": "https://ci.example",
                                       "Sec-Fetch-Site": "cross-site"})
    assert reply.status_code == 201
    plain = token_client.post("/_emulator/reset", data='{"scope": "data"}',
                              content_type="text/plain", headers=bearer)
    assert plain.status_code == 415
    assert token_client.delete("/_emulator/faults", headers=bearer).status_code == 403
    assert token_client.delete("/_emulator/faults", headers={**bearer, **HEADER}).status_code == 200


# --- which Host and which client ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "LOCALHOST.", "127.0.0.1:8080",
                                  "127.0.0.1", "[::1]:8080", "[::1]", "127.0.0.2"])
def test_local_hosts_are_answered(client, host):
    assert client.get("/_emulator/portals", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example",
                                  "127.0.0.1.nip.io", "10.0.0.5:8080", "[::2]"])
def test_other_hosts_are_refused_naming_the_setting(client, host):
    """DNS rebinding: a page's own name pointed at 127.0.0.1 reads nothing."""
    for path in ("/_emulator/portals", "/_emulator/ui/", "/_emulator/ui/events?recipient=2",
                 "/_emulator/journal"):
        reply = client.get(path, headers={"Host": host})
        assert reply.status_code == 403
        body = reply.get_json()
        assert body["error"] == "forbidden_host"
        assert "B24EMU_ALLOWED_HOSTS" in body["error_description"]
        assert "devtoken" not in reply.get_data(as_text=True)
    written = client.post("/_emulator/reset", json={"scope": "data"}, headers={"Host": host})
    assert written.status_code == 403


def test_portal_domains_and_the_setting_are_answered(settings, clock, client):
    assert client.get("/_emulator/portals", headers={"Host": "acme.localhost"}).status_code == 403
    client.post("/_emulator/seed", json=ACME)
    reply = client.get("/_emulator/notifications", headers={"Host": "ACME.localhost:8080"})
    assert reply.status_code == 200
    allowed = create_app(settings.with_overrides(allowed_hosts=" emu.internal , Ci.Example "),
                         clock=clock).test_client()
    for host in ("emu.internal", "ci.example:8080", "localhost"):
        assert allowed.get("/_emulator/portals", headers={"Host": host}).status_code == 200
    assert allowed.get("/_emulator/portals", headers={"Host": "evil.example"}).status_code == 403


def test_with_a_token_any_host_works(settings, clock):
    token_client = create_app(settings.with_overrides(control_token="s3cret"),
                              clock=clock).test_client()
    reply = token_client.get("/_emulator/portals", headers={
        "Host": "b24emu:8080", "Authorization": "Bearer s3cret"},
        environ_base={"REMOTE_ADDR": "172.18.0.3"})
    assert reply.status_code == 200
    assert token_client.get("/_emulator/portals", headers={"Host": "b24emu"}).status_code == 401


def test_the_rest_surface_answers_any_host(client):
    reply = client.post("/rest/1/devtoken/im.notify.personal.add", json={
        "USER_ID": 2, "MESSAGE": "hi"}, headers={"Host": "evil.example"})
    assert reply.status_code == 200


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("::ffff:7f00:1", True), ("10.0.0.5", False), ("::ffff:10.0.0.5", False), ("::2", False),
    ("", False), (None, False), ("localhost", False), ("fe80::1%eth0", False)])
def test_loopback_addresses(address, loopback):
    assert access.is_loopback(address) is loopback


def test_ipv4_mapped_clients_are_loopback(client):
    assert client.get("/_emulator/portals",
                      environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 200
    refused = client.get("/_emulator/portals", environ_base={"REMOTE_ADDR": "::ffff:10.0.0.5"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"


def test_a_server_on_both_stacks_answers_local_ipv4_clients(settings, clock, tmp_path):
    """Bound to `::`, an IPv4 client arrives as ::ffff:127.0.0.1 and is answered."""
    app = create_app(settings, clock=clock)
    server = make_server("::", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        seen = []
        app.before_request(lambda: seen.append(request.remote_addr))
        reply = requests.get(f"{base}/_emulator/notifications/count", timeout=10)
        assert reply.status_code == 200 and reply.json() == {"count": 0}
        assert seen == ["::ffff:127.0.0.1"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_control_client_and_the_server_agree_on_the_header():
    assert control_client.CONTROL_HEADER == access.CONTROL_HEADER


# --- the reported attacks, replayed over real HTTP ------------------------------------------------


@pytest.fixture
def emu(tmp_path):
    with RunningEmulator.start(db=tmp_path / "attack.sqlite3", fixtures=TEST_PORTAL) as running:
        yield running


def send(emu, message: str = "keep me") -> requests.Response:
    return requests.post(emu.webhook_url + "im.notify.personal.add",
                         json={"USER_ID": 2, "MESSAGE": message}, timeout=10)


def simple_post(emu, path: str, body, **headers) -> requests.Response:
    """The report's curl: a "simple" cross-origin POST, no preflight."""
    return requests.post(f"{emu.url}/_emulator/{path}", data=body, timeout=10, headers={
        "Origin": EVIL, "Content-Type": "text/plain", **headers})


def test_attack_reset_from_any_page_is_refused(emu):
    assert send(emu).status_code == 200
    for headers in ({}, {"Origin": None}):  # with the page's Origin, and curl's way (none)
        refused = simple_post(emu, "reset", '{"scope":"data"}', **headers)
        assert refused.status_code in (403, 415), refused.text
    bodiless = requests.post(f"{emu.url}/_emulator/reset", timeout=10)
    assert bodiless.status_code == 403 and bodiless.json()["error"] == "control_header_required"
    assert [n["message"] for n in emu.notifications()] == ["keep me"]


def test_attack_faults_is_refused_and_rest_keeps_answering(emu):
    refused = simple_post(emu, "faults", '{"method":"*","error":"QUERY_LIMIT_EXCEEDED"}')
    assert refused.status_code == 403
    assert emu.client.faults() == []
    assert send(emu).status_code == 200


def test_attack_clock_is_refused_and_tokens_stay_valid(emu):
    before = emu.client.clock()
    refused = simple_post(emu, "clock", '{"set":"2100-01-01T00:00:00Z","freeze":true}')
    assert refused.status_code == 403
    after = emu.client.clock()
    assert (after["frozen"], after["offset"]) == (before["frozen"], before["offset"])
    call = requests.post(f"{emu.url}/rest/server.time", timeout=10,
                         json={"auth": emu.oauth_token})
    assert call.status_code == 200


def test_attack_seed_is_refused_and_reset_does_not_bring_it_back(emu):
    attacker = json.dumps({"name": "default", "users": [{"id": 1}, {"id": 2}],
                           "webhooks": [{"user_id": 1, "code": "attackercode", "scopes": ["im"]}]})
    assert simple_post(emu, "seed", attacker).status_code == 403
    assert simple_post(emu, "seed", attacker, Origin=None).status_code == 415
    emu.reset("all")  # what the report saw bring the attacker's portal back
    hooks = [hook["url"] for hook in emu.client.portals()[0]["webhooks"]]
    assert f"{emu.url}/rest/1/devtoken/" in hooks and not any("attacker" in h for h in hooks)
    attacked = requests.post(f"{emu.url}/rest/1/attackercode/server.time", timeout=10)
    assert attacked.status_code == 401
    assert send(emu).status_code == 200


def test_attack_dns_rebinding_reads_nothing(emu):
    for path in ("portals", "journal", "notifications", "ui/"):
        reply = requests.get(f"{emu.url}/_emulator/{path}", timeout=10,
                             headers={"Host": f"evil.example:{emu.port}"})
        assert reply.status_code == 403
        assert reply.json()["error"] == "forbidden_host"
        assert "devtoken" not in reply.text and "B24EMU_ALLOWED_HOSTS" in reply.text
    own = requests.get(f"{emu.url}/_emulator/portals", timeout=10)
    assert own.status_code == 200 and "devtoken" in own.text  # the tester still sees them
    rest = requests.post(f"{emu.url}/rest/1/devtoken/server.time", timeout=10,
                         headers={"Host": f"evil.example:{emu.port}"})
    assert rest.status_code == 200  # the REST surface answers any Host, as before


def test_the_control_client_always_sends_the_header(emu):
    """Every bodiless write of EmulatorClient (and so of the CLI and the plugin) goes through."""
    send(emu)
    emu.fault("user.get", "X")
    assert emu.client.clear_faults() == 1
    assert emu.client.delete_notifications() == 1
    assert emu.client.clear_journal() >= 1
    assert emu.client.release_clock()["frozen"] is False
