"""Record through the proxy from a second emulator (the "portal"), import the recording as stubs,
verify it against the first emulator; then change the portal's behaviour and see `verify` report
exactly that. Everything over real HTTP on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests
from b24emu.cli import main
from b24emu.record import proxy as proxy_module
from b24emu.record.proxy import RecordingProxy
from b24emu.record.recording import load
from b24emu.testing.server import RunningEmulator
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from tests.conftest import serving
from tests.test_server import free_port

DEAL = {"ID": "{{params.ID|str}}", "TITLE": "Deal {{params.ID}}", "OPPORTUNITY": "1500.00",
        "ASSIGNED_BY_ID": "2", "DATE_CREATE": "2026-01-01T10:00:00+00:00", "CLOSED": "N"}
DEALS = [{"ID": str(n), "TITLE": f"Deal {n}"} for n in range(1, 61)]


@pytest.fixture
def portal(tmp_path):
    """The upstream: an emulator with deals stubbed, playing a real portal."""
    with RunningEmulator.start(db=tmp_path / "portal.sqlite3") as running:
        running.stub("crm.deal.get", result=DEAL)
        running.stub("crm.deal.list", result=DEALS)
        yield running


@pytest.fixture
def emulator(tmp_path):
    """The emulator under test."""
    with RunningEmulator.start(db=tmp_path / "emulator.sqlite3") as running:
        yield running


def run_client(base: str) -> list[requests.Response]:
    """What an integration does, pointed at `base` (a webhook URL)."""
    calls = [
        requests.post(base + "im.notify.personal.add.json", json={"USER_ID": 2, "MESSAGE": "hi"}),
        requests.get(base + "user.current"),
        requests.post(base + "crm.deal.get", data={"ID": "5"}),
        requests.post(base + "crm.deal.list.json", json={"start": 50}),
        requests.post(base + "im.notify.personal.add.json", json={"USER_ID": 2}),
        requests.post(base + "batch.json", json={"halt": 0, "cmd": {
            "now": "server.time", "deal": "crm.deal.get?ID=5",
            "me": "profile"}}),
        requests.get(base + "no.such.method.json"),
    ]
    return calls


def record(upstream: str, out, **options) -> RecordingProxy:
    return RecordingProxy(upstream, out, **options).start()


def verify_json(capsys, recording, emulator) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", str(recording), "--url", emulator.url, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_record_import_verify_round_trip(portal, emulator, tmp_path, capsys):
    out = tmp_path / "recording.json"
    proxy = record(portal.webhook(1, "devtoken"), out)
    try:
        answers = run_client(f"{proxy.url}/rest/1/placeholder/")
    finally:
        proxy.stop()
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 400, 200, 404]
    assert answers[2].json()["result"]["TITLE"] == "Deal 5"
    direct = requests.post(portal.webhook_url + "im.notify.personal.add.json", json={"USER_ID": 2})
    assert answers[4].content == direct.content  # forwarded unchanged
    assert answers[4].headers["Content-Type"] == direct.headers["Content-Type"]
    text = out.read_text()
    assert "devtoken" not in text
    recording = load(out)
    assert recording["upstream"] == f"{portal.url}/rest/1/***/"
    assert [c["method"] for c in recording["calls"]] == [
        "im.notify.personal.add", "user.current", "crm.deal.get", "crm.deal.list",
        "im.notify.personal.add", "batch", "no.such.method"]
    page = recording["calls"][3]["response"]
    assert page["total"] == 60 and "next" not in page and len(page["result"]) == 10

    assert main(["stubs", "import", str(out), "--url", emulator.url]) == 0
    assert "imported 2 stubs for 2 methods" in capsys.readouterr().out
    stubs = {stub["method"]: stub for stub in emulator.stubs()}
    assert stubs["crm.deal.get"]["params"] == {"ID": "5"}
    assert stubs["crm.deal.get"]["result"]["TITLE"] == "Deal 5"
    assert stubs["crm.deal.list"]["total"] == 60 and len(stubs["crm.deal.list"]["result"]) == 10

    code, report = verify_json(capsys, out, emulator)
    assert code == 0, report
    assert report["total"] == 7 and report["different"] == 0
    assert main(["verify", str(out), "--url", emulator.url]) == 0
    assert "7 calls replayed, 0 with differences" in capsys.readouterr().out


def test_verify_reports_exactly_what_changed_upstream(portal, emulator, tmp_path, capsys):
    first = tmp_path / "first.json"
    proxy = record(portal.webhook(1, "devtoken"), first)
    run_client(f"{proxy.url}/rest/1/x/")
    proxy.stop()
    assert main(["stubs", "import", str(first), "--url", emulator.url]) == 0

    me = requests.get(portal.webhook_url + "user.current").json()["result"]
    portal.stub("user.current", override=True, result={**me, "UF_EXTRA": "yes"})
    portal.fault("im.notify.personal.add", "QUERY_LIMIT_EXCEEDED")
    changed = tmp_path / "changed.json"
    proxy = record(portal.webhook(1, "devtoken"), changed)
    run_client(f"{proxy.url}/rest/1/x/")
    proxy.stop()

    code, report = verify_json(capsys, changed, emulator)
    assert code == 1
    found = {(call["index"], call["method"]): [d["text"] for d in call["differences"]]
             for call in report["calls"] if call["differences"]}
    assert found == {
        (1, "im.notify.personal.add"): [
            "status: portal 503, emulator 200",
            'error: only in the portal ("QUERY_LIMIT_EXCEEDED")',
            'error_description: only in the portal ("Too many requests")',
            "result: only in the emulator (number)"],
        (2, "user.current"): ["result.UF_EXTRA: only in the portal (string)"],
        (5, "im.notify.personal.add"): [
            "status: portal 503, emulator 400",
            'error: portal "QUERY_LIMIT_EXCEEDED", emulator "MESSAGE_EMPTY"',
            'error_description: portal "Too many requests", emulator "Message can\'t be empty"'],
    }
    assert main(["verify", str(changed), "--url", emulator.url]) == 1
    table = capsys.readouterr().out
    assert "result.UF_EXTRA: only in the portal (string)" in table
    assert "7 calls replayed, 3 with differences" in table


def test_oauth_upstream(portal, emulator, tmp_path, capsys):
    out = tmp_path / "oauth.json"
    proxy = record(f"{portal.url}/rest/", out, token="devaccesstoken")
    try:
        answer = requests.post(f"{proxy.url}/rest/user.current.json",
                               json={"auth": "client-side-token"})
        sent = requests.post(f"{proxy.url}/rest/crm.deal.get.json", json={"ID": 9})
    finally:
        proxy.stop()
    assert answer.status_code == 200 and answer.json()["result"]["ID"] == "1"
    assert sent.json()["result"]["TITLE"] == "Deal 9"
    text = out.read_text()
    assert "devaccesstoken" not in text and "client-side-token" not in text
    assert load(out)["auth"] == "oauth"
    assert main(["stubs", "import", str(out), "--url", emulator.url]) == 0
    code, report = verify_json(capsys, out, emulator)
    assert code == 0 and report["total"] == 2, report


def test_secrets_in_parameters_and_answers_are_masked(portal, tmp_path):
    portal.stub("app.info", scope="", result={"ID": 1, "CODE": "app",
                                             "application_token": "s3cr3t-app-token"})
    out = tmp_path / "secrets.json"
    proxy = record(portal.webhook(1, "devtoken"), out)
    try:
        reply = requests.post(f"{proxy.url}/rest/app.info?auth=querytoken",
                              data={"password": "hunter2", "auth": "formtoken", "X": "1"})
    finally:
        proxy.stop()
    assert reply.json()["result"]["application_token"] == "s3cr3t-app-token"  # unchanged
    text = out.read_text()
    for secret in ("s3cr3t-app-token", "hunter2", "querytoken", "formtoken", "devtoken"):
        assert secret not in text
    call = load(out)["calls"][0]
    assert call["params"] == {"password": "***", "X": "1"}
    assert call["response"]["result"]["application_token"] == "s3c***"


def test_bad_input_is_refused_plainly(tmp_path, capsys):
    assert main(["record", "--upstream", "ftp://x/", "--out", str(tmp_path / "r.json")]) == 2
    assert "--upstream must be" in capsys.readouterr().err
    assert main(["record", "--upstream", "ftp://x.example/rest/1/hooksecret42/", "--out",
                 str(tmp_path / "r.json")]) == 2
    error = capsys.readouterr().err
    assert "--upstream must be" in error and "hooksecret42" not in error
    assert main(["record", "--upstream", "https://x.example/rest/", "--out",
                 str(tmp_path / "r.json")]) == 2
    assert "--upstream-token" in capsys.readouterr().err
    (tmp_path / "not.json").write_text("{}")
    assert main(["verify", str(tmp_path / "not.json")]) == 2
    assert "not a b24emu recording" in capsys.readouterr().err
    assert main(["stubs", "import", str(tmp_path / "missing.json")]) == 2


def test_cli_stubs_add_list_clear(emulator, tmp_path, capsys):
    url = ["--url", emulator.url]
    assert main(["stubs", "add", "crm.deal.get", "--params", '{"ID": 5}', "--result",
                 '{"ID": "5", "TITLE": "Five"}', *url]) == 0
    assert main(["stubs", "add", "crm.deal.get", "--params", '{"ID": 6}', "--error", "NOT_FOUND",
                 "--description", "Not found", "--status", "404", *url]) == 0
    document = tmp_path / "stub.json"
    document.write_text(json.dumps([{"method": "task.item.list", "result": [], "scope": "task"},
                                    {"method": "user.current", "override": True,
                                     "result": {"ID": "1"}}]))
    assert main(["stubs", "add", "--file", str(document), *url]) == 0
    out = capsys.readouterr().out
    assert 'stub 1 added: crm.deal.get {"ID": 5} -> {"ID": "5", "TITLE": "Five"} (scope crm)' in out
    assert "stub 2 added: crm.deal.get {\"ID\": 6} -> 404 NOT_FOUND (scope crm)" in out
    assert "stub 4 added: user.current -> {\"ID\": \"1\"} (scope user, override)" in out
    hook = emulator.webhook_url
    assert requests.get(hook + "crm.deal.get?ID=5").json()["result"]["TITLE"] == "Five"
    assert requests.get(hook + "crm.deal.get?ID=6").status_code == 404
    assert main(["stubs", "list", *url]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 4 and listed[0].endswith("answered 1 calls")
    assert main(["stubs", "clear", "2", *url]) == 0
    assert main(["stubs", "clear", "2", *url]) == 1
    assert "error: not_found: No stub 2" in capsys.readouterr().err
    assert main(["stubs", "add", "crm.x", "--result", "{bad", *url]) == 2
    assert main(["stubs", "add", "crm x", *url]) == 1
    assert "method: String does not match" in capsys.readouterr().err
    assert main(["stubs", "clear", *url]) == 0
    assert "3 stubs removed" in capsys.readouterr().out
    assert main(["stubs", *url]) == 0 and capsys.readouterr().out == "no stubs\n"


def test_the_readme_cli_round_trip(portal, emulator, tmp_path, capsys):
    """`b24emu record` as its own process, stopped with Ctrl-C; then import and verify."""
    port, out = free_port(), tmp_path / "recording.json"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "b24emu", "record", "--upstream", portal.webhook(1, "devtoken"),
         "--out", str(out), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until it listens (not a timing assertion)
            try:
                requests.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        answers = run_client(f"http://127.0.0.1:{port}/rest/1/any/")
    finally:
        proxy.send_signal(signal.SIGINT)
        output, _ = proxy.communicate(timeout=30)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 400, 200, 404]
    assert f"-> {portal.url}/rest/1/***/ (webhook); writing {out}" in output
    assert f"recorded 7 calls to {out}" in output and "devtoken" not in output
    assert main(["stubs", "import", str(out), "--url", emulator.url]) == 0
    assert main(["verify", str(out), "--url", emulator.url]) == 0
    assert "7 calls replayed, 0 with differences" in capsys.readouterr().out


def test_the_proxy_refuses_what_it_cannot_forward(portal, tmp_path):
    out = tmp_path / "refused.json"
    proxy = record(portal.webhook(1, "devtoken"), out)
    try:
        elsewhere = requests.get(f"{proxy.url}/oauth/token/")
        huge = requests.post(f"{proxy.url}/rest/crm.deal.add", data=b"x" * (8 * 1024 * 1024 + 1))
        chunked = requests.post(f"{proxy.url}/rest/crm.deal.add",
                                data=iter([b"x" * (4 * 1024 * 1024)] * 3))
    finally:
        proxy.stop()
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (404, "NOT_PROXIED")
    assert (huge.status_code, huge.json()["error"]) == (413, "REQUEST_ENTITY_TOO_LARGE")
    assert (chunked.status_code, chunked.json()["error"]) == (413, "REQUEST_ENTITY_TOO_LARGE")
    assert load(out)["calls"] == []
    stopped = RecordingProxy(f"{portal.url}/rest/1/devtoken/", tmp_path / "down.json")
    stopped.start()
    port = stopped.url
    stopped.stop()
    upstream_down = RecordingProxy(f"{port}/rest/1/devtoken/", tmp_path / "down2.json").start()
    try:
        down = requests.post(f"{upstream_down.url}/rest/crm.deal.get.json", json={"ID": 1})
    finally:
        upstream_down.stop()
    assert (down.status_code, down.json()["error"]) == (502, "UPSTREAM_UNREACHABLE")
    assert load(tmp_path / "down2.json")["calls"] == []


def test_no_web_page_can_drive_the_proxy(portal, tmp_path):
    """The proxy forwards with the real portal's credentials: a page in the user's browser (an
    Origin header, a cross-site fetch) or a DNS-rebinding name gets 403, and nothing reaches
    the portal."""
    out = tmp_path / "pages.json"
    proxy = record(portal.webhook(1, "devtoken"), out)
    url = f"{proxy.url}/rest/im.notify.personal.add.json"
    try:
        page = requests.post(url, data='{"USER_ID": 2, "MESSAGE": "from a page"}',
                             headers={"Origin": "https://evil.example",
                                      "Content-Type": "text/plain"})
        fetch = requests.post(url, json={"USER_ID": 2, "MESSAGE": "x"},
                              headers={"Sec-Fetch-Site": "cross-site"})
        rebound = requests.post(url, json={"USER_ID": 2, "MESSAGE": "x"},
                                headers={"Host": f"rebind.example:{proxy.url.rsplit(':', 1)[1]}"})
        tool = requests.post(url, json={"USER_ID": 2, "MESSAGE": "from the integration"})
    finally:
        proxy.stop()
    assert (page.status_code, page.json()["error"]) == (403, "FORBIDDEN_ORIGIN")
    assert (fetch.status_code, fetch.json()["error"]) == (403, "FORBIDDEN_ORIGIN")
    assert (rebound.status_code, rebound.json()["error"]) == (403, "FORBIDDEN_HOST")
    assert tool.status_code == 200
    assert [note["message"] for note in portal.notifications()] == ["from the integration"]
    assert [call["method"] for call in load(out)["calls"]] == ["im.notify.personal.add"]


@pytest.fixture
def upstream():
    """A bare portal that writes down what reached it and answers `{"result": true}` (or
    `answer`, when set)."""
    received: list[dict] = []
    state = {"answer": b'{"result": true}'}

    def app(environ, start_response):
        request = Request(environ)
        received.append({"path": request.path, "query": request.query_string,
                         "body": request.get_data(), "type": request.content_type or ""})
        return Response(state["answer"], content_type="application/json")(environ,
                                                                          start_response)

    with serving(app) as server:
        server.received, server.state = received, state
        yield server


def test_secrets_reach_the_portal_unchanged_and_the_file_masked(upstream, tmp_path):
    out = tmp_path / "raw.json"
    proxy = record(f"{upstream.url}/rest/1/hookcode99/", out)
    try:
        requests.post(f"{proxy.url}/rest/user.add.json",
                      json={"fields": {"PASSWORD": "hunter2", "NAME": "x"},
                            "member_id": "member123456"})
        requests.post(f"{proxy.url}/rest/event.bind?password=hunter2&id=1",
                      data={"application_token": "apptoken-hunter2", "auth": "clienttoken1",
                            "client_secret": "sec-hunter2", "refresh_token": "ref-hunter2"})
    finally:
        proxy.stop()
    first, second = upstream.received
    assert json.loads(first["body"]) == {"fields": {"PASSWORD": "hunter2", "NAME": "x"},
                                         "member_id": "member123456"}
    assert first["path"] == "/rest/1/hookcode99/user.add.json"
    assert second["query"] == b"password=hunter2&id=1"
    assert second["body"] == (b"application_token=apptoken-hunter2&auth=clienttoken1&"
                              b"client_secret=sec-hunter2&refresh_token=ref-hunter2")
    text = out.read_text()
    for secret in ("hunter2", "clienttoken1", "hookcode99"):
        assert secret not in text
    calls = load(out)["calls"]
    assert calls[0]["params"]["fields"]["PASSWORD"] == "***"
    assert calls[1]["params"]["password"] == "***" and "auth" not in calls[1]["params"]


def test_oauth_forwards_everything_but_the_clients_own_token(upstream, tmp_path):
    out = tmp_path / "oauth-raw.json"
    proxy = record(f"{upstream.url}/rest/", out, token="proxytoken77")
    try:
        requests.post(f"{proxy.url}/rest/user.add.json?auth=clientquery1",
                      json={"auth": "clientjson1", "fields": {"PASSWORD": "hunter2"}})
        requests.post(f"{proxy.url}/rest/im.notify.personal.add",
                      files={"auth": (None, "clientmultipart1"), "password": (None, "hunter2"),
                             "USER_ID": (None, "2")})
    finally:
        proxy.stop()
    json_call, multipart = upstream.received
    assert json_call["query"] == b"auth=proxytoken77"
    assert json.loads(json_call["body"]) == {"fields": {"PASSWORD": "hunter2"}}
    assert multipart["query"] == b"auth=proxytoken77"
    assert b"clientmultipart1" not in multipart["body"] and b"hunter2" in multipart["body"]
    assert b'name="USER_ID"' in multipart["body"]
    text = out.read_text()
    for secret in ("hunter2", "proxytoken77", "clientquery1", "clientjson1", "clientmultipart1"):
        assert secret not in text
    assert load(out)["calls"][1]["params"] == {"password": "***", "USER_ID": "2"}


def test_webhook_password_batch_auth_and_multipart_auth_never_reach_the_file(upstream,
                                                                             tmp_path):
    out = tmp_path / "leaks.json"
    proxy = record(f"{upstream.url}/rest/1/hookcode99/", out)
    try:
        requests.get(f"{proxy.url}/rest/user.current?aplogin=1&ap=webhookpassword77")
        requests.post(f"{proxy.url}/rest/batch.json",
                      json={"cmd": {"a": "user.get?auth=batchsecrettoken1&ID=1"}})
        requests.get(f"{proxy.url}/rest/batch",
                     params={"cmd[a]": "user.get?AUTH=batchquerysecret2"})
        requests.post(f"{proxy.url}/rest/im.notify.personal.add",
                      files={"auth": (None, "multipartsecret3"),
                             "PASSWORD": (None, "multipartsecret4"), "USER_ID": (None, "2")})
    finally:
        proxy.stop()
    assert b"ap=webhookpassword77" in upstream.received[0]["query"]  # forwarded as sent
    text = out.read_text()
    for secret in ("webhookpassword77", "batchsecrettoken1", "batchquerysecret2",
                   "multipartsecret3", "multipartsecret4"):
        assert secret not in text
    calls = load(out)["calls"]
    assert calls[0]["params"] == {"aplogin": "1", "ap": "web***"}
    assert calls[1]["params"]["cmd"]["a"] == "user.get?auth=bat***&ID=1"
    assert calls[3]["params"] == {"PASSWORD": "mul***", "USER_ID": "2"}


def test_only_clients_on_this_machine_are_forwarded(upstream, tmp_path):
    """With --host 0.0.0.0 a neighbour sending `Host: localhost` must not use the credentials."""
    proxy = RecordingProxy(f"{upstream.url}/rest/1/hookcode99/", tmp_path / "lan.json")
    try:
        neighbour = Client(proxy).get("/rest/user.current",
                                      environ_base={"REMOTE_ADDR": "192.168.1.20"})
        local = Client(proxy).get("/rest/user.current",
                                  environ_base={"REMOTE_ADDR": "127.0.0.1"})
    finally:
        proxy.close()
    assert (neighbour.status_code, neighbour.json["error"]) == (403, "FORBIDDEN_CLIENT")
    assert local.status_code == 200
    assert len(upstream.received) == 1


def test_each_call_is_appended_and_the_file_and_answers_are_capped(upstream, tmp_path,
                                                                  monkeypatch):
    out = tmp_path / "capped.json"
    proxy = record(f"{upstream.url}/rest/1/hookcode99/", out)
    try:
        requests.get(f"{proxy.url}/rest/user.current")
        before = out.read_bytes()
        assert [call["method"] for call in load(out)["calls"]] == ["user.current"]
        requests.get(f"{proxy.url}/rest/profile")
        assert out.read_bytes().startswith(before)  # appended, nothing rewritten
        monkeypatch.setattr(proxy._writer, "max_bytes", len(out.read_bytes()) + 10)
        full = requests.get(f"{proxy.url}/rest/server.time")
        monkeypatch.setattr(proxy_module, "MAX_ANSWER_BYTES", 100)
        upstream.state["answer"] = json.dumps({"result": "x" * 200}).encode()
        huge = requests.get(f"{proxy.url}/rest/app.info")
    finally:
        proxy.stop()
    assert full.status_code == 200 and full.json() == {"result": True}  # forwarded, not written
    assert (huge.status_code, huge.json()["error"]) == (502, "UPSTREAM_ANSWER_TOO_LARGE")
    assert [call["method"] for call in load(out)["calls"]] == ["user.current", "profile"]
    assert len(proxy.recording["calls"]) == 2
    assert len(out.read_text().splitlines()) == 3  # the header and one line per call


def test_a_version_1_recording_still_loads(tmp_path):
    old = tmp_path / "v1.json"
    old.write_text(json.dumps({"format": "b24emu-recording", "version": 1, "auth": "webhook",
                               "upstream": "https://x/rest/1/***/",
                               "calls": [{"method": "profile", "request": {},
                                          "status": 200}]}, indent=1))
    assert [call["method"] for call in load(old)["calls"]] == ["profile"]
