"""The `b24emu` command against a real `b24emu serve` over HTTP."""

from __future__ import annotations

import json

import pytest
import requests
from b24emu import cli
from b24emu.cli import main

from tests.test_server import DEFAULT_SCOPES, Server, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("cli") / "cli.sqlite3", "fixtures/default.json")
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def clean(server, monkeypatch):
    """Every test starts from the fixture's portal, real time, no faults."""
    monkeypatch.setenv("B24EMU_URL", server.base)
    monkeypatch.delenv("B24EMU_CONTROL_TOKEN", raising=False)
    requests.post(f"{server.base}/_emulator/reset", json={"scope": "all"}, timeout=5)
    requests.delete(f"{server.base}/_emulator/clock", headers={"X-B24EMU-Control": "1"}, timeout=5)


@pytest.fixture
def run(capsys):
    """Run the command; (exit code, stdout, stderr)."""
    def invoke(*argv: str):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return invoke


def hook(server, user: int = 1, code: str = "devtoken") -> str:
    return f"{server.base}/rest/{user}/{code}/"


def stored(server, **params) -> list[dict]:
    return requests.get(f"{server.base}/_emulator/notifications", params=params,
                        timeout=5).json()["items"]


# --- notify -----------------------------------------------------------------------------------


def test_notify_prints_the_id_and_the_blocks_file_is_the_attach(server, run, tmp_path):
    blocks = tmp_path / "blocks.json"
    blocks.write_text(json.dumps([{"MESSAGE": "all green"},
                                  {"LINK": {"NAME": "log", "LINK": "https://ci.example/42"}}]))
    code, out, err = run("notify", "--url", hook(server), "--user", "2", "--text",
                         "Build #42 passed", "--tag", "build-42", "--blocks", str(blocks),
                         "--message-out", "Build 42 passed (mail)")
    assert (code, err) == (0, "")
    new_id = int(out.strip())
    [note] = stored(server)
    assert note["id"] == new_id and note["recipient_id"] == 2 and note["sender_id"] == 1
    assert note["message"] == "Build #42 passed"
    assert note["message_out"] == "Build 42 passed (mail)"
    assert note["tag"] == "build-42" and note["type"] == "personal"
    assert note["attach"]["BLOCKS"][0] == {"MESSAGE": "all green"}
    assert note["attach"]["BLOCKS"][1]["LINK"][0]["LINK"] == "https://ci.example/42"


def test_notify_with_the_same_tag_replaces_the_earlier_one(server, run):
    first = run("notify", "--url", hook(server), "--user", "2", "--text", "deploying",
                "--tag", "deploy")
    second = run("notify", "--url", hook(server).rstrip("/"), "--user", "2", "--text",
                 "deployed", "--tag", "deploy", "--sub-tag", "step-2")
    assert first[0] == second[0] == 0
    assert int(second[1]) > int(first[1])
    notes = stored(server, tag="deploy")
    assert [(n["id"], n["message"], n["sub_tag"]) for n in notes] == [
        (int(second[1]), "deployed", "step-2")]


def test_notify_inline_full_attach_and_system(server, run):
    attach = json.dumps({"ID": 1, "COLOR": "#29619b",
                         "BLOCKS": [{"GRID": [{"NAME": "Branch", "VALUE": "main"}]}]})
    code, out, _ = run("notify", "--url", hook(server), "--user", "2", "--text", "Nightly done",
                       "--blocks", attach, "--system")
    assert code == 0
    note = requests.get(f"{server.base}/_emulator/notifications/{int(out)}", timeout=5).json()
    assert (note["type"], note["sender_id"]) == ("system", 0)
    assert note["attach"]["COLOR"] == "#29619b"
    assert note["attach"]["BLOCKS"][0]["GRID"][0]["VALUE"] == "main"


def test_notify_prints_the_portals_error_and_fails(server, run):
    code, out, err = run("notify", "--url", hook(server), "--user", "0", "--text", "x")
    assert (code, out) == (1, "")
    assert err == "error: USER_ID_EMPTY: User ID can't be empty\n"

    code, _, err = run("notify", "--url", hook(server, 2, "noimtoken"), "--user", "1",
                       "--text", "x")
    assert code == 1 and err.startswith("error: insufficient_scope")

    code, _, err = run("notify", "--url", hook(server), "--user", "3", "--text", "x")
    assert code == 1
    assert err == "error: the portal answered false: user 3 does not exist or is inactive\n"

    code, _, err = run("notify", "--url", hook(server), "--user", "2", "--text", "x",
                       "--blocks", '[{"NOPE": 1}]')
    assert (code, err) == (1, "error: ATTACH_ERROR: Incorrect attach params\n")
    assert stored(server) == []


def test_notify_retries_a_503_then_gives_up_with_the_error(server, run, monkeypatch):
    slept = []
    monkeypatch.setattr(cli, "_sleep", slept.append)
    requests.post(f"{server.base}/_emulator/faults", timeout=5, json={
        "method": "im.notify.personal.add", "error": "QUERY_LIMIT_EXCEEDED", "times": 2})
    code, out, err = run("notify", "--url", hook(server), "--user", "2", "--text", "retried")
    assert (code, err) == (0, "")
    assert slept == [1.0, 2.0]
    assert stored(server)[0]["id"] == int(out)

    requests.post(f"{server.base}/_emulator/faults", timeout=5, json={
        "method": "im.notify.personal.add", "error": "QUERY_LIMIT_EXCEEDED", "times": 1})
    code, out, err = run("notify", "--url", hook(server), "--user", "2", "--text", "x",
                         "--retries", "0")
    assert (code, out) == (1, "")
    assert err == "error: QUERY_LIMIT_EXCEEDED: Too many requests\n"


def test_notify_connection_and_url_problems_are_one_line(server, run, tmp_path):
    port = free_port()
    code, out, err = run("notify", "--url", f"http://127.0.0.1:{port}/rest/1/secret/",
                         "--user", "2", "--text", "x")
    assert (code, out) == (1, "")
    assert err == f"error: cannot reach http://127.0.0.1:{port} (connection refused)\n"
    assert "secret" not in err

    code, _, err = run("notify", "--url", f"{server.base}/_emulator/ui/rest/1/x/", "--user", "2",
                       "--text", "x")
    assert code == 1
    assert err.startswith(f"error: HTTP 404 from {server.base}: not a Bitrix24 REST answer")

    for url in (f"{server.base}/rest/1/s3cretcode/im.notify.personal.add",
                f"{server.base}/rest/im.notify.personal.add?auth=s3cretcode"):
        code, _, err = run("notify", "--url", url, "--user", "2", "--text", "x")
        assert code == 2 and err.startswith("b24emu: --url takes a webhook URL")
        assert "s3cretcode" not in err
        code, _, err = run("portals", "--url", url)
        assert code == 2 and "s3cretcode" not in err

    code, _, err = run("notify", "--url", "portal.example/rest/1/x/", "--user", "2", "--text", "x")
    assert (code, err) == (2, "b24emu: --url must be an http(s) URL, got "
                              "'portal.example/rest/1/…/'\n")

    code, _, err = run("notify", "--url", hook(server), "--user", "2", "--text", "x",
                       "--blocks", "[{broken")
    assert code == 2 and err.startswith("b24emu: --blocks: not valid JSON")

    code, _, err = run("notify", "--url", hook(server), "--user", "2", "--text", "x",
                       "--blocks", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json: No such file or directory" in err
    assert stored(server) == []


# --- control commands -------------------------------------------------------------------------


def send(server, user: int = 2, message: str = "hi", **params) -> int:
    reply = requests.post(hook(server) + "im.notify.personal.add", timeout=5,
                          json={"USER_ID": user, "MESSAGE": message, **params})
    return reply.json()["result"]


def test_notifications_table_filters_and_json(server, run):
    first = send(server, 2, "short one", TAG="t1")
    second = send(server, 1, "a long message " * 10)
    requests.post(f"{server.base}/_emulator/notifications/{first}/read", json={}, timeout=5)

    code, out, _ = run("notifications")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TO", "FROM", "TYPE", "READ", "TAG", "CREATED", "MESSAGE"]
    assert lines[1].split()[:6] == [str(second), "1", "1", "personal", "no", "-"]
    assert lines[1].endswith("a long message a long message a long message a ...")
    assert lines[2].split()[:6] == [str(first), "2", "1", "personal", "yes", "t1"]
    assert lines[2].endswith("short one")

    code, out, _ = run("notifications", "--unread")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(second)]
    code, out, _ = run("notifications", "--recipient", "2", "--json")
    assert [n["id"] for n in json.loads(out)] == [first]
    code, out, _ = run("notifications", "--limit", "1")
    assert out.splitlines()[-1] == "(1 of 2; --limit shows more)"
    code, out, _ = run("notifications", "--tag", "nothing-like-this")
    assert (code, out) == (0, "no notifications\n")


def test_journal_table_and_filters(server, run):
    send(server, 2, "ok")
    requests.post(hook(server) + "im.notify.personal.add", json={"MESSAGE": "x"}, timeout=5)
    code, out, _ = run("journal")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ID", "AT", "(UTC)", "METHOD", "STATUS", "ERROR", "AUTH", "USER",
                                "MS"]
    assert lines[1].split()[3:8] == ["im.notify.personal.add", "400", "USER_ID_EMPTY", "apauth",
                                     "1"]
    code, out, _ = run("journal", "--status", "200", "--json")
    [entry] = json.loads(out)
    assert entry["method"] == "im.notify.personal.add" and entry["status"] == 200


def test_faults_add_list_clear(server, run):
    code, out, _ = run("faults", "add", "im.notify.personal.add", "QUERY_LIMIT_EXCEEDED",
                       "--times", "2")
    assert code == 0
    assert out.endswith("armed: im.notify.personal.add -> 503 QUERY_LIMIT_EXCEEDED (2 more)\n")
    run("faults", "add", "*", "--latency", "0.01", "--url", server.base)
    code, out, _ = run("faults")
    assert [line.split(": ", 1)[1] for line in out.splitlines()] == [
        "im.notify.personal.add -> 503 QUERY_LIMIT_EXCEEDED (2 more), hit 0 times",
        "* -> after 0.01 s (until cleared), hit 0 times"]
    assert requests.post(hook(server) + "im.notify.personal.add", timeout=5,
                         json={"USER_ID": 2, "MESSAGE": "x"}).status_code == 503
    fault_id = out.split(":")[0]
    assert run("faults", "clear", fault_id) == (0, f"fault {fault_id} cleared\n", "")
    assert run("faults", "clear") == (0, "1 faults cleared\n", "")
    assert run("faults") == (0, "no faults\n", "")
    code, _, err = run("faults", "add", "no.such.method", "ACCESS_DENIED")
    assert code == 1 and err.startswith("error: invalid_parameter: method: unknown method")
    code, _, err = run("faults", "clear", "999")
    assert code == 1 and err.startswith("error: not_found: ")


def test_clock_freeze_advance_set_release(server, run):
    code, out, _ = run("clock", "--set", "2026-05-01T12:00:00+00:00", "--freeze")
    assert (code, out) == (0, "2026-05-01T12:00:00+00:00 (frozen; unix 1777636800.000)\n")
    code, out, _ = run("clock", "--advance", "90")
    assert out.startswith("2026-05-01T12:01:30+00:00 (frozen")
    reply = requests.post(hook(server) + "im.notify.personal.add", timeout=5,
                          json={"USER_ID": 2, "MESSAGE": "x"}).json()
    assert reply["time"]["date_start"] == "2026-05-01T12:01:30+00:00"
    code, out, _ = run("clock", "--unfreeze")
    assert "(running, " in out and "s from real time" in out
    code, out, _ = run("clock", "--release")
    assert out.split(" (")[1].startswith("running, real time")
    code, _, err = run("clock", "--release", "--advance", "5")
    assert code == 2 and "--release cannot be combined" in err
    code, _, err = run("clock", "--set", "yesterday")
    assert code == 1 and err.startswith("error: invalid_parameter: set: ")


def test_seed_reset_and_portals(server, run, tmp_path):
    portal = {"name": "acme", "domain": "acme.localhost",
              "users": [{"id": 1, "name": "Ann"}, {"id": 5, "name": "Eve", "active": False}],
              "webhooks": [{"user_id": 1, "code": "acmehook", "scopes": ["im"]}]}
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(portal))
    assert run("seed", str(path)) == (
        0, "seeded portal 'acme' (acme.localhost): 2 users, 1 webhooks, 0 apps\n", "")
    code, out, _ = run("portals")
    assert "portal 'acme' (acme.localhost)" in out
    assert "  user 5: Eve (inactive)" in out
    port = server.base.rsplit(":", 1)[1]
    assert f"  webhook [im]: http://acme.localhost:{port}/rest/1/acmehook/" in out
    assert f"  webhook [{','.join(DEFAULT_SCOPES)}]: {server.base}/rest/1/devtoken/" in out

    path.write_text(json.dumps({"users": [{"id": "one"}]}))
    code, out, err = run("seed", str(path))
    assert (code, out) == (1, "")
    assert err == "error: invalid_fixture: users[0].id: Not a valid integer.\n"
    path.write_text("{not json")
    code, _, err = run("seed", str(path))
    assert code == 2 and "not valid JSON" in err

    send(server)
    code, out, _ = run("reset", "--scope", "data")
    assert code == 0 and out.startswith("reset portal 'default' (data): removed ")
    assert stored(server) == []
    code, out, _ = run("reset", "--portal", "acme")
    assert out.startswith("reset portal 'acme' (all)")
    code, _, err = run("reset", "--portal", "nope")
    assert (code, err) == (1, "error: portal_not_found: No portal named 'nope'\n")


def test_unreachable_emulator_is_one_line(run, monkeypatch):
    port = free_port()
    monkeypatch.setenv("B24EMU_URL", f"http://127.0.0.1:{port}")
    code, out, err = run("notifications")
    assert (code, out) == (1, "")
    assert err == (f"error: unreachable: cannot reach the emulator at http://127.0.0.1:{port} "
                   "(connection refused)\n")


def test_control_token(tmp_path, run, monkeypatch):
    guarded = Server(tmp_path / "token.sqlite3", "fixtures/default.json",
                     {"B24EMU_CONTROL_TOKEN": "s3cret"})
    try:
        code, _, err = run("clock", "--url", guarded.base)
        assert code == 1
        assert err == "error: unauthorized: The control API needs its bearer token\n"
        code, out, _ = run("clock", "--url", guarded.base, "--token", "s3cret")
        assert code == 0 and "running" in out
        monkeypatch.setenv("B24EMU_CONTROL_TOKEN", "s3cret")
        assert run("faults", "--url", guarded.base) == (0, "no faults\n", "")
    finally:
        guarded.stop()


# --- which URL each command takes -------------------------------------------------------------


def test_notify_takes_a_webhook_url_from_the_flag_or_b24emu_webhook(server, run, monkeypatch):
    code, out, err = run("notify", "--url", server.base, "--user", "2", "--text", "x")
    assert (code, out) == (2, "")
    assert err == ("b24emu: --url takes a webhook URL like http://127.0.0.1:8080/rest/1/devtoken/ "
                   f"(`b24emu portals` lists them), got the emulator's base URL: {server.base}\n")
    monkeypatch.setenv("B24EMU_WEBHOOK", f"{server.base}/_emulator/")
    code, _, err = run("notify", "--user", "2", "--text", "x")
    assert code == 2 and err.startswith("b24emu: B24EMU_WEBHOOK takes a webhook URL like ")
    assert err.endswith(f"got no /rest/<user>/<code>/ in it: {server.base}/_emulator/\n")

    monkeypatch.setenv("B24EMU_WEBHOOK", hook(server))
    code, out, err = run("notify", "--user", "2", "--text", "through the variable")
    assert (code, err) == (0, "")
    assert stored(server)[0]["id"] == int(out)

    monkeypatch.delenv("B24EMU_WEBHOOK")
    code, _, err = run("notify", "--user", "2", "--text", "x")
    assert (code, err) == (2, "b24emu: notify needs a webhook URL: --url or B24EMU_WEBHOOK, "
                              "e.g. http://127.0.0.1:8080/rest/1/devtoken/\n")
    assert len(stored(server)) == 1


def test_control_commands_take_the_base_url_never_a_webhook(server, run, monkeypatch):
    code, out, err = run("notifications", "--url", hook(server, 1, "topsecret"))
    assert (code, out) == (2, "")
    assert err == ("b24emu: --url takes the emulator's base URL like http://127.0.0.1:8080 "
                   f"(no /rest/ or /_emulator/ path), got a webhook URL: {server.base}/rest/1/…/\n")
    assert "topsecret" not in err
    monkeypatch.setenv("B24EMU_URL", f"{server.base}/_emulator/ui/")
    code, _, err = run("clock")
    assert (code, err) == (2, "b24emu: B24EMU_URL takes the emulator's base URL like "
                              "http://127.0.0.1:8080 (no /rest/ or /_emulator/ path), got a URL "
                              f"with a path: {server.base}/_emulator/ui/\n")
    code, out, _ = run("clock", "--url", server.base + "/")  # a trailing slash is fine
    assert code == 0 and "running" in out


def test_a_password_in_a_url_is_never_shown_in_a_message(run):
    """`user:password@` before the host (a portal behind basic auth) is dropped from every
    message that shows a URL, as the webhook's code is."""
    code, out, err = run("notify", "--url", "https://admin:s3cretpass@portal.example/rest/1/",
                         "--user", "2", "--text", "hi")
    assert (code, out) == (2, "")
    assert "s3cretpass" not in err and "admin" not in err
    assert "https://portal.example/rest/1/" in err
