"""No secret in full anywhere but where it must be: journal, log, database file.

Secrets of a portal: webhook codes, OAuth access and refresh tokens, client secrets. Webhook
codes live in the `webhooks` table (the control API shows ready-to-use URLs); everything else is
stored as a SHA-256 digest, and no secret is ever written to the journal or the log in full.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from b24emu import create_app
from b24emu.rest import redact
from b24emu.store import schema
from b24emu.store.db import Database
from b24emu.store.portals import default_application_token
from b24emu.testing.server import RunningEmulator

from tests.conftest import TEST_PORTAL
from tests.test_server import Server

FIXTURE = json.loads(TEST_PORTAL.read_text())
SEEDED = {"name": "acme", "domain": "acme.localhost", "users": [{"id": 1, "name": "Ada"}],
          "webhooks": [{"user_id": 1, "code": "acmewebhookcode", "scopes": ["im"]}],
          "apps": [{"client_id": "acme.app", "client_secret": "acmeclientsecret",
                    "scopes": ["im"],
                    "tokens": [{"access_token": "acmeaccesstoken",
                                "refresh_token": "acmerefreshtoken", "user_id": 1,
                                "expires_at": "2099-01-01T00:00:00+00:00"}]}]}


def secrets_of(fixture: dict) -> tuple[set[str], set[str]]:
    """(webhook codes, every other secret) of a fixture document."""
    codes = {hook["code"] for hook in fixture.get("webhooks", [])}
    others = set()
    for app in fixture.get("apps", []):
        others.add(app["client_secret"])
        for token in app.get("tokens", []):
            others.update(filter(None, (token["access_token"], token.get("refresh_token"))))
    return codes, others


CODES, TOKENS = (a | b for a, b in zip(secrets_of(FIXTURE), secrets_of(SEEDED), strict=True))
# "x" (a one-letter client secret of the test portal) would match any file; it is never written
# in full either, but only secrets of 8 characters or more are searched for.
SEARCHED = {secret for secret in CODES | TOKENS if len(secret) >= redact.SHOWN_FROM}


# --- masking rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "shown"), [
    ("/rest/1/devtoken/im.notify.personal.add", "/rest/1/dev***/im.notify.personal.add"),
    ("/rest/1//devtoken/im.notify.personal.add", "/rest/1//dev***/im.notify.personal.add"),
    ("/rest//1//devtoken//im.notify.json", "/rest//1//dev***//im.notify.json"),
    ("/rest/admin/devtoken/batch/", "/rest/admin/dev***/batch/"),
    ("/rest/1/devtoken/extra/im.notify", "/rest/1/dev***/***/im.notify"),
    ("/rest/1/devtoken", "/rest/1/dev***"),
    ("/rest/1/abc/im.notify", "/rest/1/***/im.notify"),
    ("/rest/im.notify.personal.add", "/rest/im.notify.personal.add"),
    ("/rest//im.notify", "/rest//im.notify"),
])
def test_webhook_codes_are_masked_by_position(path, shown):
    assert redact.path(path) == shown


def test_credential_parameters_are_masked_in_every_spelling():
    params = {
        "AUTH": "devaccesstoken", "Access_Token": ["oauthAccessToken"],
        "auth_id": {"x": "noimaccesstoken"}, "REFRESH_TOKEN": "devrefreshtoken",
        "client_secret": "devclientsecret", "nested": {"data": {"auth": "carolaccesstoken"}},
        "cmd": {"a": "im.notify.personal.add?auth=otheraccesstoken&USER_ID=2",
                "b": "user.get?%61uth=expiredaccesstoken",
                "c": "user.get?ACCESS.TOKEN=disabledapptoken&x=1"},
        "CMD": ["server.time?access_token=devaccesstoken"],
        "MESSAGE": "pasted devaccesstoken by mistake", "USER_ID": 2, "auth_none": None,
    }
    shown = redact.params(params, redact.secrets_of(params))
    assert shown == {
        "AUTH": "dev***", "Access_Token": ["oau***"], "auth_id": {"x": "noi***"},
        "REFRESH_TOKEN": "dev***", "client_secret": "dev***",
        "nested": {"data": {"auth": "car***"}},
        "cmd": {"a": "im.notify.personal.add?auth=oth***&USER_ID=2",
                "b": "user.get?%61uth=exp***", "c": "user.get?ACCESS.TOKEN=dis***&x=1"},
        "CMD": ["server.time?access_token=dev***"],
        "MESSAGE": "pasted dev*** by mistake", "USER_ID": 2, "auth_none": None}
    assert redact.mask("abc") == "***" and redact.mask(12345678) == "123***"


def test_deeply_nested_parameters_are_masked():
    """A JSON body may nest 511 levels; masking walks it without recursion."""
    deep = {"auth": "devaccesstoken"}
    for _ in range(3000):
        deep = {"x": [deep]}
    shown = redact.params(deep)
    for _ in range(3000):
        shown = shown["x"][0]
    assert shown == {"auth": "dev***"}


def test_free_text_is_scrubbed():
    text = ('POST /rest/1/devtoken/im.notify?AUTH=devaccesstoken {"access_token": '
            '"oauthAccessToken", "author": "Anna"} client_secret=devclientsecret')
    assert redact.scrub_text(text) == (
        'POST /rest/1/dev***/im.notify?AUTH=dev*** {"access_token": "oau***", '
        '"author": "Anna"} client_secret=dev***')


# --- the journal, over the test client ----------------------------------------------------------


HOSTILE = [
    ("post", "/rest/1//devtoken/im.notify.personal.add", {"json": {"USER_ID": 2, "MESSAGE": "a"}}),
    ("get", "/rest//1/devtoken//im.notify.personal.add?USER_ID=2&MESSAGE=b", {}),
    ("get", "/rest/1/abc123token/extra/im.notify.personal.add", {}),
    ("get", "/rest/im.notify.personal.add?AUTH=devaccesstoken&USER_ID=2&MESSAGE=c", {}),
    ("get", "/rest/im.notify.personal.add?Access_Token=expiredaccesstoken&USER_ID=2", {}),
    ("post", "/rest/im.notify.personal.add", {"json": {"Auth": "oauthAccessToken",
                                                       "USER_ID": 2, "MESSAGE": "d"}}),
    ("post", "/rest/im.notify.personal.add.json", {"data": "auth[]=noimaccesstoken&USER_ID=2",
                                                   "content_type":
                                                   "application/x-www-form-urlencoded"}),
    ("post", "/rest/im.notify.personal.add", {"data": {"ACCESS_TOKEN": "carolaccesstoken",
                                                       "USER_ID": "2"},
                                              "content_type": "multipart/form-data"}),
    ("post", "/rest/batch", {"json": {"auth": "devaccesstoken", "cmd": {
        "a": "im.notify.personal.add?auth=otheraccesstoken&USER_ID=2&MESSAGE=e",
        "b": "server.time?%61uth=disabledapptoken",
        "c": "server.time?REFRESH_TOKEN=devrefreshtoken&client_secret=devclientsecret"}}}),
    ("post", "/rest/2/bobimtoken/batch", {"data": (
        "cmd[a]=im.notify.personal.add%3FUSER_ID%3D1%26auth%3Ddevaccesstoken&halt=0"),
        "content_type": "application/x-www-form-urlencoded"}),
    ("post", "/rest/2/noimtoken/im.notify.personal.add", {"json": {"USER_ID": 1}}),
    ("post", "/rest/3/inactivetoken/im.notify.personal.add", {"json": {"USER_ID": 1}}),
    ("get", "/rest/2/brieftoken/user.current", {}),
    ("get", "/rest/server.time", {"headers": {"Authorization": "Bearer devaccesstoken"}}),
]


def test_the_journal_masks_every_spelling(client, emulator):
    for method, url, options in HOSTILE:
        status = getattr(client, method)(url, **options).status_code
        assert status != 500, url
    entries = client.get("/_emulator/journal?limit=1000").get_json()["items"]
    assert len(entries) == len(HOSTILE)
    text = json.dumps(entries)
    assert [secret for secret in SEARCHED if secret in text] == []
    by_path = {entry["path"]: entry for entry in entries}
    assert "/rest/1//dev***/im.notify.personal.add" in by_path
    assert "/rest/1/abc***/***/im.notify.personal.add" in by_path
    batch = next(e for e in entries if e["path"] == "/rest/batch")
    assert batch["params"]["cmd"]["a"] == (
        "im.notify.personal.add?auth=oth***&USER_ID=2&MESSAGE=e")
    upper = next(e for e in entries if "AUTH" in (e["params"] or {}))
    assert upper["params"]["AUTH"] == "dev***"


# --- what the database keeps ---------------------------------------------------------------------


def test_client_secrets_are_stored_as_digests_and_still_work(client, emulator):
    rows = emulator.database.query("SELECT client_id, client_secret_hash FROM apps")
    digest = hashlib.sha256(b"devclientsecret").hexdigest()
    assert {"client_id": "local.emulator.app", "client_secret_hash": digest} in rows
    refreshed = client.post("/oauth/token/", data={
        "grant_type": "refresh_token", "client_id": "local.emulator.app",
        "client_secret": "devclientsecret", "refresh_token": "devrefreshtoken"})
    assert refreshed.status_code == 200 and refreshed.get_json()["access_token"]
    wrong = client.post("/oauth/token/", data={
        "grant_type": "refresh_token", "client_id": "local.emulator.app",
        "client_secret": digest, "refresh_token": "devrefreshtoken"})
    assert (wrong.status_code, wrong.get_json()["error"]) == (400, "invalid_client")


def test_a_seeded_portal_is_remembered_without_its_secrets_and_reset_restores_it(
        client, emulator):
    assert client.post("/_emulator/seed", json=SEEDED).status_code == 200
    [remembered] = emulator.database.query(
        "SELECT value FROM control WHERE key = 'fixture:acme'")
    for secret in ("acmeaccesstoken", "acmerefreshtoken", "acmeclientsecret"):
        assert secret not in remembered["value"]
    acme = {"Host": "acme.localhost"}
    grant = {"grant_type": "refresh_token", "client_id": "acme.app",
             "client_secret": "acmeclientsecret", "refresh_token": "acmerefreshtoken"}
    assert client.post("/oauth/token/", data=grant, headers=acme).status_code == 200
    assert client.post("/oauth/token/", data=grant, headers=acme).status_code == 400  # spent
    reset = client.post("/_emulator/reset?portal=acme", json={"scope": "all"}).get_json()
    assert reset["reloaded"] is True
    assert client.post("/oauth/token/", data=grant, headers=acme).status_code == 200
    call = client.post("/rest/server.time", json={"auth": "acmeaccesstoken"}, headers=acme)
    assert call.status_code == 200
    hook = client.post("/rest/1/acmewebhookcode/server.time", headers=acme)
    assert hook.status_code == 200


def test_the_migration_turns_stored_secrets_into_digests(tmp_path, settings, clock):
    """A database written before: plain client secret and a remembered fixture document."""
    path = tmp_path / "old.sqlite3"
    position = schema.MIGRATIONS.index(schema._v9_secrets_as_digests)
    database = Database(str(path))
    with database.write() as db:
        for number, migration in enumerate(schema.MIGRATIONS[:position], start=1):
            migration(db)
            db.conn.execute(f"PRAGMA user_version = {number}")
        db["portals"].insert({"name": "acme", "domain": "acme.localhost"})
        db["users"].insert({"portal": "acme", "id": 1, "name": "Ada", "active": 1, "admin": 0,
                            "departments": "[1]"})
        db["apps"].insert({"portal": "acme", "client_id": "acme.app",
                           "client_secret": "acmeclientsecret", "scopes": '["im"]', "active": 1})
        db["control"].insert({"key": "fixture:acme", "value": json.dumps(SEEDED)})
        db["control"].insert({"key": "fixture:broken", "value": "{not json"})
    database.close()
    app = create_app(replace(settings, db=str(path), fixtures=""), clock=clock)
    emulator = app.extensions["b24emu"]
    assert emulator.database.schema_version() == len(schema.MIGRATIONS)
    [row] = emulator.database.query("SELECT client_secret_hash, application_token FROM apps")
    assert row["client_secret_hash"] == hashlib.sha256(b"acmeclientsecret").hexdigest()
    # Stored before v8 gave apps an application_token: the one a reseed gives (v10).
    assert row["application_token"] == default_application_token("acme", "acme.app")
    keys = [r["key"] for r in emulator.database.query("SELECT key FROM control")]
    assert "fixture:broken" not in keys
    client = app.test_client()
    client.environ_base["HTTP_X_B24EMU_CONTROL"] = "1"
    assert client.post("/_emulator/reset?portal=acme").get_json()["reloaded"] is True
    emulator.database.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = path.read_bytes() + Path(f"{path}-wal").read_bytes()
    for secret in (b"acmeclientsecret", b"acmeaccesstoken", b"acmerefreshtoken"):
        assert secret not in stored
    call = client.post("/rest/server.time", json={"auth": "acmeaccesstoken"},
                       headers={"Host": "acme.localhost"})
    assert call.status_code == 200


# --- the log --------------------------------------------------------------------------------------


def test_an_unexpected_error_is_logged_without_credentials(tmp_path, caplog, monkeypatch):
    """A handler that fails and even puts a secret in its message: the log masks it."""
    with RunningEmulator.start(db=tmp_path / "boom.sqlite3", fixtures=TEST_PORTAL) as emu:
        entry = emu.emulator.registry.get("server.time")

        def boom(call):
            raise RuntimeError(f"cannot use {call.params}")

        monkeypatch.setitem(emu.emulator.registry._methods, entry.name,
                            replace(entry, handler=boom))  # the registry is shared: restored
        caplog.set_level(logging.DEBUG)
        urls = [f"{emu.url}/rest/1//devtoken/server.time?client_secret=devclientsecret",
                f"{emu.url}/rest/server.time?auth=devaccesstoken"]
        for url in urls:
            reply = requests.post(url, json={"Refresh_Token": "devrefreshtoken"}, timeout=10)
            assert (reply.status_code, reply.json()["error"]) == (500, "INTERNAL_SERVER_ERROR")
    logged = "\n".join(record.getMessage() + (record.exc_text or "")
                       for record in caplog.records  # the emulator's, not the test's urllib3
                       if record.name.startswith(("b24emu", "werkzeug")))
    assert "unexpected error in POST /rest/1//dev***/server.time" in logged
    assert "RuntimeError: cannot use" in logged
    assert "'Refresh_Token': 'dev***'" in logged and "'client_secret': 'dev***'" in logged
    assert "unexpected error in POST /rest/server.time" in logged
    assert [secret for secret in SEARCHED if secret in logged] == []


# --- everything at once, against `b24emu serve` --------------------------------------------------


def hostile_requests(base: str) -> dict:
    """Credentials in every spelling the report found (and more), over real HTTP; the answer
    of an OAuth refresh (new tokens) sent with its secrets in the query string."""
    for method, url, options in HOSTILE:
        kwargs = dict(options)
        if "content_type" in kwargs:
            content_type = kwargs.pop("content_type")
            if content_type == "multipart/form-data":
                kwargs["files"] = {k: (None, v) for k, v in kwargs.pop("data").items()}
            else:
                kwargs["headers"] = {"Content-Type": content_type}
        reply = requests.request(method, base + url, timeout=10, **kwargs)
        assert reply.status_code != 500, url
    refreshed = requests.get(f"{base}/oauth/token/", timeout=10, params={
        "grant_type": "refresh_token", "client_id": "local.emulator.app",
        "client_secret": "devclientsecret", "refresh_token": "devrefreshtoken"})
    assert refreshed.status_code == 200
    return refreshed.json()


def test_no_secret_in_the_journal_the_log_or_the_database_file(tmp_path):
    db = tmp_path / "secrets.sqlite3"
    log = tmp_path / "server.log"
    server = Server(db, str(TEST_PORTAL), {"B24EMU_LOG_LEVEL": "DEBUG"}, log_file=log)
    try:
        control = {"X-B24EMU-Control": "1"}
        seeded = requests.post(f"{server.base}/_emulator/seed", json=SEEDED, timeout=10)
        assert seeded.status_code == 200
        issued = hostile_requests(server.base)
        new_tokens = {issued["access_token"], issued["refresh_token"]}
        assert requests.post(f"{server.base}/_emulator/reset?portal=acme", headers=control,
                             timeout=10).json()["reloaded"] is True
        journal = requests.get(f"{server.base}/_emulator/journal?limit=1000", timeout=10)
        assert len(journal.json()["items"]) == len(HOSTILE)
        files = [db, Path(f"{db}-wal")]
        while_running = b"".join(path.read_bytes() for path in files if path.exists())
    finally:
        output = server.stop()
    assert "webhook of user 1" in output  # the banner (stdout) shows the URLs on purpose
    logged = log.read_text()
    assert "im.notify.personal.add => 200" in logged  # the log did record the calls
    at_rest = while_running + b"".join(path.read_bytes() for path in files if path.exists())

    everything = SEARCHED | new_tokens
    assert [s for s in everything if s in journal.text] == []
    assert [s for s in everything if s in logged] == []
    digests_only = (TOKENS & SEARCHED) | new_tokens
    assert [s for s in digests_only if s.encode() in at_rest] == []
    # Webhook codes are kept in full only where the URLs are built from: webhooks.code and the
    # remembered rows of a seeded portal.
    conn = sqlite3.connect(db)
    try:
        places = set()
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                                 "'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                for code in CODES & SEARCHED:
                    found = conn.execute(
                        f"SELECT count(*) FROM {table} WHERE instr(CAST({column} AS TEXT), ?)",
                        (code,)).fetchone()[0]
                    if found:
                        places.add((table, column))
    finally:
        conn.close()
    assert places == {("webhooks", "code"), ("control", "value")}


@pytest.mark.parametrize("name", ["b24emu.events", "b24emu.record", "werkzeug"])
def test_every_logger_that_may_see_a_credential_masks_it(app, caplog, name):
    """A logger's filter does not cover its children: each such logger has its own."""
    caplog.set_level(logging.INFO)
    logging.getLogger(name).warning("POST /rest/1/devtoken/server.time?auth=devaccesstoken")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "devtoken" not in logged and "devaccesstoken" not in logged
    assert "/rest/1/dev***/server.time" in logged
