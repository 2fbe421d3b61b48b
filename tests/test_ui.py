"""The inbox page's server side: the page and its assets, access, and the live event stream.

The page itself (rendering, escaping, live updates in a browser) is tested in
test_ui_browser.py; here the event stream runs with a simulated clock, so heartbeats and the
stream's lifetime are checked without waiting.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from b24emu.control import ui
from b24emu.settings import Settings
from b24emu.store.notifications import NotificationFilter

from tests.conftest import TEST_PORTAL, serving


class FakeTime:
    """clock() and sleep() for the stream: sleeping moves the clock, nothing waits."""

    def __init__(self):
        self.now = 1000.0
        self.slept = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += 1


def parse(chunk: str) -> tuple[str, dict | None]:
    """(event name, data) of one SSE message; ("comment", None) for a comment line."""
    if chunk.startswith(":"):
        return "comment", None
    fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
    return fields["event"], json.loads(fields["data"])


def notify(rest, message: str = "hi", user: int = 2, **params) -> int:
    return rest.result("im.notify.personal.add", {"USER_ID": user, "MESSAGE": message, **params})


@pytest.fixture
def stream(emulator):
    """An event stream for Bob (user 2) on the default portal, driven by a fake clock."""
    fake = FakeTime()
    watcher = ui.RecipientWatcher(emulator.database.path, "default", 2)
    generator = ui._stream(watcher, None, clock=fake.clock, sleep=fake.sleep)
    assert parse(next(generator)) == ("ready", {"portal": "default", "recipient": 2})
    yield generator
    generator.close()


def next_event(generator) -> tuple[str, dict | None]:
    return parse(next(generator))


# --- the page and its assets ------------------------------------------------------------------


def test_page_is_served_with_its_assets(client):
    page = client.get("/_emulator/ui/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script src="/_emulator/ui/static/inbox.js" defer></script>' in html
    assert 'href="/_emulator/ui/static/inbox.css"' in html
    assert 'data-api="/_emulator"' in html and 'data-events="/_emulator/ui/events"' in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    for name, mimetype in (("inbox.js", "text/javascript"), ("inbox.css", "text/css"),
                           ("bell.svg", "image/svg+xml")):
        asset = client.get(f"/_emulator/ui/static/{name}")
        assert (asset.status_code, asset.mimetype) == (200, mimetype)
    assert client.get("/_emulator/ui").status_code in (200, 308)


def test_the_script_never_parses_html_from_data(client):
    script = client.get("/_emulator/ui/static/inbox.js").get_data(as_text=True)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


@pytest.fixture
def token_client(tmp_path, clock):
    from b24emu import create_app

    settings = Settings(db=str(tmp_path / "token.sqlite3"), fixtures=str(TEST_PORTAL),
                        control_token='t<"&>')
    return create_app(settings, clock=clock).test_client()


def test_a_token_protects_the_page_its_assets_and_events(token_client):
    for path in ("/_emulator/ui/", "/_emulator/ui/static/inbox.js",
                 "/_emulator/ui/events?recipient=2"):
        refused = token_client.get(path)
        assert refused.status_code == 401
        assert refused.get_json()["error"] == "unauthorized"
    page = token_client.get("/_emulator/ui/?token=t%3C%22%26%3E")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # the token reaches the page escaped: URL-encoded in asset links, entity-escaped in data-
    assert 'src="/_emulator/ui/static/inbox.js?token=t%3C%22%26%3E"' in html
    assert 'data-token="t&lt;&#34;&amp;&gt;"' in html
    assert 't<"&>' not in html
    assert token_client.get("/_emulator/ui/static/inbox.js?token=t%3C%22%26%3E").status_code == 200


def test_remote_clients_are_refused_without_a_token(client):
    for path in ("/_emulator/ui/", "/_emulator/ui/events?recipient=2"):
        refused = client.get(path, environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert refused.status_code == 403
        assert refused.get_json()["error"] == "forbidden"


# --- the event stream: requests -----------------------------------------------------------------


def test_events_for_an_unknown_portal_or_a_bad_recipient(client):
    unknown = client.get("/_emulator/ui/events?portal=nope&recipient=2")
    assert unknown.status_code == 404
    assert unknown.get_json() == {"error": "portal_not_found",
                                  "error_description": "No portal named 'nope'"}
    for recipient in ("", "abc", "0", "-1", "2.5", "%C2%B2", "9" * 19, "1" * 5000):
        bad = client.get(f"/_emulator/ui/events?recipient={recipient}")
        assert bad.status_code == 400
        assert bad.get_json()["error"] == "invalid_recipient"


def test_events_answer_as_an_event_stream(client, rest, monkeypatch):
    monkeypatch.setattr(ui, "LIFETIME_SECONDS", 0)  # one message, then the stream ends
    response = client.get("/_emulator/ui/events?portal=default&recipient=2")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.get_data(as_text=True) == (
        'retry: 2000\nevent: ready\ndata: {"portal":"default","recipient":2}\n\n')


# --- the event stream: what it reports ------------------------------------------------------


def test_added_read_and_deleted_reach_the_stream(stream, rest, emulator):
    first = notify(rest, "one")
    assert next_event(stream) == ("added", {"ids": [first]})
    with emulator.database.write() as db:
        db.execute("UPDATE notifications SET is_read = 1 WHERE id = ?", [first])
    assert next_event(stream) == ("read", {"ids": [first], "read": True})
    with emulator.database.write() as db:
        db.execute("UPDATE notifications SET is_read = 0 WHERE id = ?", [first])
    assert next_event(stream) == ("read", {"ids": [first], "read": False})
    with emulator.database.write() as db:
        db.execute("DELETE FROM notifications WHERE id = ?", [first])
    assert next_event(stream) == ("deleted", {"ids": [first]})


def test_a_tag_replacement_is_a_delete_and_an_add(stream, rest):
    old = notify(rest, "v1", TAG="build")
    assert next_event(stream) == ("added", {"ids": [old]})
    new = notify(rest, "v2", TAG="build")
    assert next_event(stream) == ("deleted", {"ids": [old]})
    assert next_event(stream) == ("added", {"ids": [new]})


def test_other_recipients_and_portals_stay_silent(stream, rest, emulator, tmp_path):
    notify(rest, "for Anna", user=1)
    fixture = tmp_path / "other.json"
    fixture.write_text(json.dumps({"name": "other", "domain": "other.example",
                                   "users": [{"id": 2, "name": "Bob"}]}))
    emulator.seed(fixture)
    from b24emu.store.notifications import NewNotification

    emulator.notifications.add(NewNotification(
        portal="other", recipient_id=2, sender_id=0, notify_type=4, message="elsewhere",
        message_out="", notify_tag="", notify_sub_tag="", attach=None, created_at=1.0,
        method="im.notify.system.add", auth_type="webhook", credential="x"))
    mine = notify(rest, "for Bob")
    assert next_event(stream) == ("added", {"ids": [mine]})


def test_quiet_stream_sends_heartbeats_and_ends_after_its_lifetime(emulator, monkeypatch):
    monkeypatch.setattr(ui, "TICK_SECONDS", 0.5)  # exact in binary: no drift over 600 ticks
    fake = FakeTime()
    watcher = ui.RecipientWatcher(emulator.database.path, "default", 2)
    events = list(ui._stream(watcher, None, clock=fake.clock, sleep=fake.sleep))
    assert parse(events[0])[0] == "ready"
    expected = int(ui.LIFETIME_SECONDS // ui.HEARTBEAT_SECONDS)
    assert events[1:] == [": heartbeat\n\n"] * expected
    assert fake.now - 1000.0 >= ui.LIFETIME_SECONDS
    with pytest.raises(Exception, match="closed"):
        watcher.conn.execute("SELECT 1")  # the stream's own connection is released


def test_the_stream_ends_when_the_client_goes_away(emulator):
    ours, theirs = socket.socketpair()
    try:
        fake = FakeTime()
        watcher = ui.RecipientWatcher(emulator.database.path, "default", 2)
        generator = ui._stream(watcher, ours, clock=fake.clock, sleep=fake.sleep)
        assert parse(next(generator))[0] == "ready"
        assert not ui._client_gone(ours)
        theirs.close()
        assert ui._client_gone(ours)
        assert list(generator) == []
        assert fake.slept == 1  # noticed on the first tick, not at the next heartbeat
    finally:
        ours.close()


def test_a_stopping_worker_ends_its_streams(emulator):
    """Once the worker begins to stop (`SHUTTING_DOWN`, set by its stop signal's handler), an
    open stream ends at its next tick and frees its place."""
    try:
        fake = FakeTime()
        watcher = ui.RecipientWatcher(emulator.database.path, "default", 2)
        generator = ui._stream(watcher, None, clock=fake.clock, sleep=fake.sleep)
        assert parse(next(generator))[0] == "ready"
        ui.SHUTTING_DOWN.set()
        assert list(generator) == []
        assert fake.slept == 1 and watcher.closed
    finally:
        ui.SHUTTING_DOWN.clear()


def test_a_stream_compares_only_the_newest_notifications_whatever_the_recipient_holds(
        emulator, monkeypatch):
    """Each look reads the newest WATCH_WINDOW rows (an index range), so a recipient with many
    notifications costs an open page no more; an add, a delete and a read inside the window are
    still reported, a row pushed out at the bottom is not reported as deleted, and one that
    slides back in from below (a newer one was deleted) is not reported as added."""
    monkeypatch.setattr(ui, "WATCH_WINDOW", 5)
    store = emulator.notifications
    ids = [emulator_add(emulator, f"m{index}") for index in range(8)]
    watcher = ui.RecipientWatcher(emulator.database.path, "default", 2)
    try:
        assert sorted(watcher.known) == ids[-5:]
        seen: list[str] = []
        watcher.conn.set_trace_callback(seen.append)
        newest = emulator_add(emulator, "new")  # pushes ids[3] out at the bottom
        assert watcher.changes() == [("added", {"ids": [newest]})]  # ids[3]: not "deleted"
        assert sorted(watcher.known) == [*ids[4:], newest]
        store.delete_matching("default", NotificationFilter(ids=(newest,)))
        assert watcher.changes() == [("deleted", {"ids": [newest]})]  # ids[3]: not "added"
        assert sorted(watcher.known) == ids[3:]
        newer = emulator_add(emulator, "newer")
        store.delete_matching("default", NotificationFilter(ids=(ids[5],)))
        store.mark_read("default", NotificationFilter(ids=(ids[6],)), read=True, now=1.0)
        assert watcher.changes() == [("deleted", {"ids": [ids[5]]}),
                                     ("added", {"ids": [newer]}),
                                     ("read", {"ids": [ids[6]], "read": True})]
        assert any("LIMIT" in statement for statement in seen)
    finally:
        watcher.close()


def test_the_watch_window_covers_what_the_page_lists():
    from pathlib import Path

    script = (Path(ui.__file__).parent / "static" / "inbox.js").read_text()
    assert f"const LIST_LIMIT = {ui.LIST_LIMIT};" in script
    assert ui.WATCH_WINDOW > ui.LIST_LIMIT


def emulator_add(emulator, message: str) -> int:
    from b24emu.store.notifications import NewNotification

    return emulator.notifications.add(NewNotification(
        portal="default", recipient_id=2, sender_id=1, notify_type=2, message=message,
        message_out="", notify_tag="", notify_sub_tag="", attach=None, created_at=0.0,
        method="im.notify.personal.add", auth_type="webhook", credential="1", request_id=""))


def test_a_worker_serves_a_bounded_number_of_open_pages(client, emulator, monkeypatch):
    """Each open page holds an SQLite connection and re-reads its recipient after commits: past
    `MAX_OPEN_STREAMS` a page gets a 503, and a closed page frees its place."""
    monkeypatch.setattr(ui, "MAX_OPEN_STREAMS", ui.RecipientWatcher._open + 2)
    path = emulator.database.path
    first = ui.RecipientWatcher(path, "default", 2)
    second = ui.RecipientWatcher(path, "default", 2)
    refused = client.get("/_emulator/ui/events?portal=default&recipient=2")
    assert refused.status_code == 503
    assert refused.get_json() == {
        "error": "too_many_streams",
        "error_description": f"{ui.MAX_OPEN_STREAMS} inbox pages are open on this worker already"}
    second.close()
    second.close()  # twice: counted once
    monkeypatch.setattr(ui, "LIFETIME_SECONDS", 0)
    assert client.get("/_emulator/ui/events?portal=default&recipient=2").status_code == 200
    first.close()
    third = ui.RecipientWatcher(path, "default", 2)
    fourth = ui.RecipientWatcher(path, "default", 2)
    third.close()
    fourth.close()


def test_a_head_request_for_the_stream_gives_its_place_back(client, monkeypatch):
    """HEAD of the stream (Flask answers it for the GET route) never starts the body: its
    watcher is closed with the response, so 256 HEADs cannot lock every inbox page out."""
    monkeypatch.setattr(ui, "MAX_OPEN_STREAMS", ui.RecipientWatcher._open + 1)
    for _ in range(3):
        head = client.head("/_emulator/ui/events?portal=default&recipient=2")
        assert head.status_code == 200 and head.data == b""
        head.close()  # as a server does once the (empty) answer is sent
    monkeypatch.setattr(ui, "LIFETIME_SECONDS", 0)
    assert client.get("/_emulator/ui/events?portal=default&recipient=2").status_code == 200


def test_a_stream_on_a_descriptor_past_1023_is_not_taken_for_closed():
    """select() refuses descriptors numbered 1024 or more; a worker with that many open files
    took every such stream for closed and ended it at once."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(1100, hard - 1)
    if wanted < 1024:
        pytest.skip(f"descriptors stop at {hard} here: none can be numbered 1024 or more")
    if soft < wanted + 1:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    ours, theirs = socket.socketpair()
    high = socket.socket(fileno=os.dup2(ours.fileno(), wanted))
    try:
        assert high.fileno() >= 1024
        assert not ui._client_gone(high)
        theirs.close()
        assert ui._client_gone(high)
    finally:
        high.close()
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_closed_page_frees_its_stream_under_a_plain_wsgi_server(app, monkeypatch):
    """Under werkzeug's server (the pytest plugin's) the view gets the client's socket, so a
    page that is closed frees its place (and thread) within a tick, long before a heartbeat."""
    monkeypatch.setattr(ui, "HEARTBEAT_SECONDS", 3600)
    before = ui.RecipientWatcher._open
    with serving(app) as server:
        page = socket.create_connection(("127.0.0.1", server.server_port))
        page.sendall(b"GET /_emulator/ui/events?portal=default&recipient=2 HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\n\r\n")
        received = b""
        while b"event: ready" not in received:  # the head, then the first chunk
            chunk = page.recv(4096)
            assert chunk, received
            received += chunk
        assert ui.RecipientWatcher._open == before + 1
        page.close()
        deadline = time.monotonic() + 10
        while ui.RecipientWatcher._open > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ui.RecipientWatcher._open == before
