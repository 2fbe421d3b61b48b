"""A web page in the tester's browser cannot drive the emulator (headless Chromium, real server).

Two attackers, each a page the browser really loads:

- a page of another origin (`http://localhost:<other port>`) sends every "simple" request a page
  can send without a CORS preflight: `fetch(…, {method: "POST", mode: "no-cors", body})` to each
  control endpoint, and a `text/plain` form shaped like JSON;
- a DNS-rebinding page (`http://rebind.example:<emulator port>`, the name mapped to 127.0.0.1 by
  Chromium's resolver rules) is same-origin with the emulator, so it may send JSON and custom
  headers and read the answers.

Chromium's own local-network checks are turned off for these pages: the emulator must hold on its
own, in browsers that have no such checks. The browser saw every request answered with a refusal,
and the data survives.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from playwright.sync_api import sync_playwright

from tests import prerequisites
from tests.test_server import Server
from tests.test_ui_browser import CHROMIUM_ARGS

REBIND = "rebind.example"
NO_LOCAL_NETWORK_CHECKS = ("--disable-features=LocalNetworkAccessChecks,"
                           "PrivateNetworkAccessSendPreflights,"
                           "PrivateNetworkAccessRespectPreflightResults")
ATTACKER_PORTAL = {"name": "default", "users": [{"id": 1}, {"id": 2}],
                   "webhooks": [{"user_id": 1, "code": "attackercode", "scopes": ["im"]}]}
CROSS_SITE_PAGE = """<!doctype html><title>cute cats</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{api}/reset" enctype="text/plain" target="sink">
  <input name='{{"scope":"data","x":"' value='"}}'>
</form>
<script>
  const attacks = [
    ["/reset", '{{"scope":"data"}}'],
    ["/faults", '{{"method":"*","error":"QUERY_LIMIT_EXCEEDED"}}'],
    ["/clock", '{{"set":"2100-01-01T00:00:00Z","freeze":true}}'],
    ["/seed", {seed}],
    ["/notifications/read", '{{"read":true}}'],
    ["/stubs", '{{"method":"user.get","override":true,"result":[]}}'],
    ["/events", '{{"event":"ONAPPINSTALL","data":{{}}}}'],
    ["/apps/local.emulator.app/install", '{{}}'],
    ["/reset", undefined],
  ];
  Promise.allSettled(attacks.map(([path, body]) =>
      fetch("{api}" + path, {{method: "POST", mode: "no-cors", body: body}})))
    .then((results) => {{
      window.fetched = results.map((result) => result.status);
      document.getElementById("form").submit();
    }});
</script>"""
REBINDING_PAGE = """<!doctype html><title>cute dogs</title>
<script>
  const json = {"Content-Type": "application/json", "X-B24EMU-Control": "1"};
  const calls = [
    ["GET", "/_emulator/portals"], ["GET", "/_emulator/journal"], ["GET", "/_emulator/ui/"],
    ["POST", "/_emulator/reset", '{"scope":"data"}'],
    ["POST", "/_emulator/faults", '{"method":"*","error":"QUERY_LIMIT_EXCEEDED"}'],
    ["DELETE", "/_emulator/notifications"],
  ];
  Promise.all(calls.map(([method, path, body]) =>
      fetch(path, {method, headers: json, body})
        .then(async (r) => [path, r.status, await r.text()])))
    .then((answers) => { window.answers = answers; });
</script>"""


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, headless, resolving rebind.example to 127.0.0.1."""
    binary = prerequisites.chromium()
    if binary is None:
        pytest.fail(f"Chromium not found: {prerequisites.CHROMIUM_HINT}", pytrace=False)
    args = [*CHROMIUM_ARGS, NO_LOCAL_NETWORK_CHECKS,
            f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "xsite.sqlite3", "tests/data/portal.json")
    yield running
    running.stop()


@pytest.fixture
def attacker():
    """Serves one page, set by the test, at http://localhost:<port>/ (another origin)."""
    page = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = page["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield page, f"http://localhost:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def snapshot(server) -> dict:
    """What the attacks would change, read by the tester's own tools."""
    get = lambda path: requests.get(f"{server.base}/_emulator/{path}", timeout=10).json()  # noqa: E731
    clock = get("clock")
    hooks = [hook["url"] for portal in get("portals")["items"] for hook in portal["webhooks"]]
    return {"notifications": [(n["id"], n["read"]) for n in get("notifications")["items"]],
            "journal": len(get("journal")["items"]), "faults": get("faults")["items"],
            "clock": (clock["frozen"], clock["offset"]), "webhooks": hooks,
            "stubs": get("stubs")["items"],
            "deliveries": len(get("events/deliveries")["items"])}


def keep_me(server) -> None:
    reply = requests.post(f"{server.base}/rest/1/devtoken/im.notify.personal.add", timeout=10,
                          json={"USER_ID": 2, "MESSAGE": "keep me"})
    assert reply.status_code == 200


def test_a_page_of_another_origin_cannot_change_anything(chromium, server, attacker):
    keep_me(server)
    before = snapshot(server)
    html, url = attacker
    api = f"{server.base}/_emulator"
    html["html"] = CROSS_SITE_PAGE.format(api=api, seed=json.dumps(json.dumps(ATTACKER_PORTAL)))
    context = chromium.new_context()
    answered = []
    try:
        page = context.new_page()
        page.on("response", lambda r: r.url.startswith(api) and answered.append(r))
        page.goto(url)
        page.wait_for_function("window.fetched !== undefined", timeout=15000)
        fetched = page.evaluate("window.fetched")
        deadline_wait(lambda: len(answered) >= 10, page)  # nine fetches and the form
        # The fetches are opaque to the page (and their bodies to the browser's tools); the
        # form is a navigation, whose answer the browser keeps.
        seen = sorted((r.request.method, r.url[len(api):], r.status) for r in answered)
        [form] = [r for r in answered if r.request.resource_type == "document"]
        form_answer = form.json()
    finally:
        context.close()
    assert fetched == ["fulfilled"] * 9  # sent, and opaque to the page, as no-cors is
    assert seen == sorted([("POST", "/reset", 403), ("POST", "/faults", 403),
                           ("POST", "/clock", 403), ("POST", "/seed", 403),
                           ("POST", "/notifications/read", 403), ("POST", "/stubs", 403),
                           ("POST", "/events", 403),
                           ("POST", "/apps/local.emulator.app/install", 403),
                           ("POST", "/reset", 403), ("POST", "/reset", 403)])
    assert form_answer["error"] == "forbidden_origin"
    assert f"Origin {url.rstrip('/')!r}" in form_answer["error_description"]
    assert snapshot(server) == before
    requests.post(f"{api}/reset", json={"scope": "all"}, timeout=10).raise_for_status()
    assert "attackercode" not in json.dumps(snapshot(server)["webhooks"])
    keep_me(server)


def test_a_dns_rebinding_page_reads_and_changes_nothing(chromium, server):
    keep_me(server)
    before = snapshot(server)
    origin = f"http://{REBIND}:{server.port}"
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.route(f"{origin}/cute-dogs", lambda route: route.fulfill(
            status=200, content_type="text/html", body=REBINDING_PAGE))
        page.goto(f"{origin}/cute-dogs")
        page.wait_for_function("window.answers !== undefined", timeout=15000)
        answers = page.evaluate("window.answers")
    finally:
        context.close()
    assert [(path, status) for path, status, _ in answers] == [
        ("/_emulator/portals", 403), ("/_emulator/journal", 403), ("/_emulator/ui/", 403),
        ("/_emulator/reset", 403), ("/_emulator/faults", 403), ("/_emulator/notifications", 403)]
    for _, _, text in answers:
        assert json.loads(text)["error"] == "forbidden_host"
        assert "devtoken" not in text
    assert snapshot(server) == before


def deadline_wait(condition, page, timeout_ms: int = 15000) -> None:
    """Let the browser run until `condition()` holds (responses arrive as events)."""
    waited = 0
    while not condition():
        assert waited < timeout_ms, "the browser did not see every answer"
        page.wait_for_timeout(50)
        waited += 50
