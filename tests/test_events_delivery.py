"""Events over real HTTP: the emulator POSTs to a handler server in the test, as a portal does.

The handler server decodes each body with PHP's rules (`b24emu.rest.params.parse_php_query`) and
with b24pysdk's own event parser, and can call the emulator back with the `auth` it received.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import requests
from b24emu.rest.params import parse_php_query
from b24pysdk.credentials import OAuthEventData

EVENTS_TOKEN = "eventsaccesstoken"  # noqa: S105 (the default portal's events app)
DOC_AUTH_KEYS = {"access_token", "expires", "expires_in", "scope", "domain", "server_endpoint",
                 "status", "client_endpoint", "member_id", "user_id", "application_token"}


class HandlerServer:
    """An app's event handler: records every POST; `answer(params)` → (status, body text)."""

    def __init__(self):
        self.received: queue.Queue = queue.Queue()
        self.release = threading.Event()
        self.release.set()
        self.answer = lambda params: (200, "ok")
        self.trickle = 0.0  # seconds between two bytes of the answer's body (0: all at once)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = parse_php_query(raw)
                owner.received.put({"raw": raw.decode("ascii"), "params": params,
                                    "content_type": self.headers.get("Content-Type"),
                                    "path": self.path})
                owner.release.wait(30)
                status, text = owner.answer(params)
                body = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if not owner.trickle:
                        self.wfile.write(body)
                    for index in range(len(body) if owner.trickle else 0):
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                        time.sleep(owner.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the emulator gave up at its deadline and closed the connection

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/b24/handler"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout: float = 10) -> dict:
        return self.received.get(timeout=timeout)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def handler():
    server = HandlerServer()
    yield server
    server.close()


def rest(b24emu, method: str, token: str = EVENTS_TOKEN, **params):
    return requests.post(b24emu.oauth_url + method, json={"auth": token, **params}, timeout=10)


def bind(b24emu, event: str, url: str, token: str = EVENTS_TOKEN, **params) -> None:
    reply = rest(b24emu, "event.bind", token, event=event, handler=url, **params)
    assert reply.status_code == 200 and reply.json()["result"] is True, reply.text


T0 = 1_772_355_600  # 2026-03-01T09:00:00Z


@pytest.mark.b24emu(clock="2026-03-01T09:00:00+00:00")
def test_the_complete_loop_deal_update_to_notification(b24emu, handler):
    """fire "deal updated" → the handler calls im.notify.personal.add with the auth it got →
    the manager has the notification."""
    def answer(params):
        auth = params["auth"]
        sent = requests.post(auth["client_endpoint"] + "im.notify.personal.add", timeout=10,
                             json={"auth": auth["access_token"], "USER_ID": 2,
                                   "MESSAGE": f"Deal {params['data']['FIELDS']['ID']} moved"})
        return 200, json.dumps({"notified": sent.json().get("result")})

    handler.answer = answer
    bind(b24emu, "ONCRMDEALUPDATE", handler.url)
    fired = b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}})

    [delivery] = fired["deliveries"]
    assert delivery["status"] == "delivered" and delivery["http_status"] == 200
    [note] = b24emu.notifications(recipient=2)
    assert note["message"] == "Deal 5 moved" and note["auth_type"] == "oauth"
    assert json.loads(delivery["response"]) == {"notified": note["id"]}
    assert delivery["sent_at"] == T0 and delivery["user_id"] == 1

    got = handler.next()
    assert got["content_type"] == "application/x-www-form-urlencoded"
    assert got["path"] == "/b24/handler"
    assert "data%5BFIELDS%5D%5BID%5D=5" in got["raw"]  # PHP brackets, as http_build_query
    params = got["params"]
    # the docs' example ("What Comes to the Handler"): the same keys, values as strings
    assert list(params) == ["event", "event_handler_id", "data", "ts", "auth"]
    assert params["event"] == "ONCRMDEALUPDATE"
    assert params["data"] == {"FIELDS": {"ID": "5"}}
    [bound] = b24emu.client.event_handlers()
    assert params["event_handler_id"] == str(bound["id"])
    assert params["ts"] == str(T0)
    auth = params["auth"]
    assert set(auth) == DOC_AUTH_KEYS  # no refresh_token: only install/offline events get one
    assert auth["application_token"] == "eventsapplicationtoken"
    assert (auth["user_id"], auth["status"], auth["scope"]) == ("1", "L", "crm,im,task,user")
    assert (auth["expires"], auth["expires_in"]) == (str(T0 + 3600), "3600")
    assert auth["client_endpoint"] == auth["server_endpoint"] == b24emu.url + "/rest/"
    assert auth["domain"] == b24emu.url.split("://")[1] and len(auth["member_id"]) == 32
    # the official Python SDK's own parser reads the body unmodified
    parsed = OAuthEventData.from_dict(dict(parse_qsl(got["raw"])))
    assert parsed.event == "ONCRMDEALUPDATE" and parsed.event_handler_id == bound["id"]
    assert parsed.auth.application_token == "eventsapplicationtoken"
    assert parsed.auth.oauth_token.access_token == auth["access_token"]
    assert parsed.auth.user_id == 1 and not parsed.is_system
    assert parsed.data == {"FIELDS": {"ID": "5"}} and parsed.ts.timestamp() == T0

    [entry] = b24emu.journal(method="oncrmdealupdate")
    assert entry["auth_type"] == "event" and entry["status"] == 200
    assert entry["path"] == handler.url and entry["credential"] == "local.events.app"
    assert entry["params"]["delivery_id"] == delivery["id"]


@pytest.mark.b24emu(clock="2026-03-01T09:00:00+00:00")
def test_the_token_works_and_expires_an_hour_later_on_the_emulators_clock(b24emu, handler):
    bind(b24emu, "ONTASKADD", handler.url)
    b24emu.fire_event("ONTASKADD", {"FIELDS_AFTER": {"ID": 7}})
    auth = handler.next()["params"]["auth"]
    assert rest(b24emu, "server.time", token=auth["access_token"]).status_code == 200
    b24emu.advance_clock(3601)
    expired = rest(b24emu, "server.time", token=auth["access_token"])
    assert (expired.status_code, expired.json()["error"]) == (401, "expired_token")


def test_an_event_nobody_caused_carries_no_tokens(b24emu, handler):
    bind(b24emu, "ONCRMDEALADD", handler.url)
    fired = b24emu.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": 1}}, user=None)
    assert fired["deliveries"][0]["status"] == "delivered"
    got = handler.next()
    assert set(got["params"]["auth"]) == {"domain", "client_endpoint", "server_endpoint",
                                          "member_id", "application_token"}
    assert OAuthEventData.from_dict(dict(parse_qsl(got["raw"]))).is_system


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


def test_a_down_or_slow_handler_never_blocks_a_rest_call(b24emu, handler):
    handler.release.clear()  # the handler hangs until the test lets it answer
    bind(b24emu, "ONCRMDEALUPDATE", handler.url)
    bind(b24emu, "ONCRMDEALUPDATE", closed_port_url())
    fired = b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 1}}, wait=False)
    assert len(fired["deliveries"]) == 2
    handler.next()  # the slow handler has the request and is not answering
    for index in range(5):  # meanwhile the portal answers as usual
        reply = rest(b24emu, "im.notify.personal.add", USER_ID=2, MESSAGE=f"n{index}")
        assert reply.status_code == 200
    assert b24emu.count(recipient=2) == 5
    slow, down = (b24emu.client.delivery(i) for i in fired["deliveries"])
    assert slow["status"] == "sending"
    handler.release.set()
    slow, down = b24emu.client.wait_for_deliveries(fired["deliveries"])
    assert (slow["status"], slow["http_status"]) == ("delivered", 200)
    assert down["status"] == "failed" and down["http_status"] is None
    assert down["error"].startswith("connection failed") and "refused" in down["error"]


def test_a_handler_that_does_not_answer_in_time_fails_and_is_not_retried(b24emu, handler):
    b24emu.emulator.deliveries.timeout = 0.3
    handler.release.clear()
    bind(b24emu, "ONCRMDEALADD", handler.url)
    [delivery] = b24emu.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": 1}})["deliveries"]
    assert delivery["status"] == "failed" and delivery["error"] == "timeout after 0.3 s"
    handler.release.set()
    [entry] = b24emu.journal(method="oncrmdealadd")
    assert entry["status"] is None and entry["error"] == "timeout after 0.3 s"
    assert handler.received.qsize() == 1  # sent once: a portal does not resend


def test_a_handler_trickling_its_answer_fails_when_the_timeout_is_up(b24emu, handler):
    b24emu.emulator.deliveries.timeout = 0.5
    handler.answer = lambda params: (200, "x" * 1000)
    handler.trickle = 0.05  # a byte every 50 ms: each read is in time, the whole is not
    bind(b24emu, "ONCRMDEALADD", handler.url)
    [delivery] = b24emu.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": 1}})["deliveries"]
    # A timeout per read would let the whole answer in (in 50 s): delivered, not failed.
    assert (delivery["status"], delivery["error"]) == ("failed", "timeout after 0.5 s")


class DribblingHandler:
    """A handler that answers its status line, then one header line every `pause` seconds,
    never ending its headers (until the client goes away)."""

    def __init__(self, pause: float = 0.1):
        import socket

        self.pause = pause
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/dribble"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._dribble, args=(conn,), daemon=True).start()

    def _dribble(self, conn):
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stopped.wait(self.pause):
                    conn.sendall(b"X-Still-Coming: yes\r\n")  # each read is in time
            except OSError:
                pass  # the emulator hung up

    def close(self):
        self.stopped.set()
        self.listener.close()


def test_a_handler_dribbling_its_headers_fails_when_the_timeout_is_up(b24emu, handler):
    """The timeout bounds the whole delivery: two handlers that never finish their headers
    (as many as there are delivery threads) time out, and the next delivery is sent."""
    b24emu.emulator.deliveries.timeout = 0.5
    dribbling = DribblingHandler()
    try:
        bind(b24emu, "ONCRMDEALADD", dribbling.url)
        bind(b24emu, "ONCRMDEALADD", dribbling.url + "?second")
        slow = b24emu.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": 1}})["deliveries"]
        assert [(d["status"], d["error"]) for d in slow] == [
            ("failed", "timeout after 0.5 s")] * 2
        bind(b24emu, "ONCRMDEALUPDATE", handler.url)
        [after] = b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 2}})["deliveries"]
        assert (after["status"], after["http_status"]) == ("delivered", 200)
    finally:
        dribbling.close()


def test_an_error_answer_is_a_failed_delivery_with_the_answer_truncated(b24emu, handler):
    handler.answer = lambda params: (500, "x" * 5000)
    bind(b24emu, "ONCRMDEALDELETE", handler.url)
    [delivery] = b24emu.fire_event("ONCRMDEALDELETE", {"FIELDS": {"ID": 1}})["deliveries"]
    assert (delivery["status"], delivery["http_status"]) == ("failed", 500)
    assert delivery["error"] == "HTTP 500" and delivery["response"] == "x" * 1000
    assert [d["id"] for d in b24emu.deliveries(status="failed")] == [delivery["id"]]
    assert b24emu.deliveries(status="delivered") == []
    [entry] = b24emu.journal(method="oncrmdealdelete")
    assert (entry["status"], entry["error"]) == (500, "HTTP 500")
    assert entry["params"]["response"] == "x" * 200


def test_deliveries_queued_before_a_restart_are_sent_after_it(tmp_path, handler):
    from b24emu.testing.server import RunningEmulator

    db = tmp_path / "portal.sqlite3"
    with RunningEmulator.start(db=db) as first:
        bind(first, "ONCRMDEALADD", handler.url)
        first.emulator.deliveries.wake = lambda: None  # the process dies before it sends
        fired = first.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": 9}}, wait=False)
        assert first.client.delivery(fired["deliveries"][0])["status"] == "queued"
    assert handler.received.empty()
    with RunningEmulator.start(db=db) as second:  # the same SQLite file, a new process
        [delivery] = second.client.wait_for_deliveries(fired["deliveries"])
        assert delivery["status"] == "delivered"
        assert handler.next()["params"]["data"] == {"FIELDS": {"ID": "9"}}


def test_a_delivery_a_dead_process_was_sending_is_sent_again(b24emu, handler):
    bind(b24emu, "ONCRMDEALADD", handler.url)
    events = b24emu.emulator.events
    b24emu.emulator.deliveries.wake = lambda: None
    dead, live = (b24emu.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": n}}, wait=False)
                  ["deliveries"][0] for n in (1, 2))
    with b24emu.emulator.database.write() as db:
        db.execute("UPDATE event_deliveries SET status = 'sending', claimed_by = ? WHERE id = ?",
                   ["somewhere-else:1:x", live])  # another machine's worker: left alone
        db.execute("UPDATE event_deliveries SET status = 'sending', claimed_by = ? WHERE id = ?",
                   [f"{__import__('socket').gethostname()}:999999999:x", dead])
    b24emu.emulator.deliveries.ensure_started()  # looks for orphans when it starts
    [sent] = b24emu.client.wait_for_deliveries([dead])
    assert sent["status"] == "delivered"
    assert events.delivery("default", live)["status"] == "sending"
    assert handler.next()["params"]["data"] == {"FIELDS": {"ID": "1"}}


def test_two_processes_on_one_database_send_each_delivery_once(b24emu, handler):
    """Each process runs its own delivery threads; claims are atomic, so nothing goes twice."""
    from b24emu import create_app

    other = create_app(b24emu.emulator.settings, seed=False).extensions["b24emu"]
    bind(b24emu, "ONCRMDEALADD", handler.url)
    try:
        other.deliveries.ensure_started()
        ids = [b24emu.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": n}}, wait=False)
               ["deliveries"][0] for n in range(40)]
        rows = b24emu.client.wait_for_deliveries(ids, timeout=60)
    finally:
        other.deliveries.stop()
    assert {row["status"] for row in rows} == {"delivered"}
    got = sorted(int(handler.next()["params"]["data"]["FIELDS"]["ID"]) for _ in ids)
    assert got == list(range(40)) and handler.received.empty()


@pytest.mark.b24emu(event_hosts="hooks.test")
def test_a_host_no_longer_allowed_is_never_called(b24emu, handler):
    bind(b24emu, "ONCRMDEALADD", "http://hooks.test/h")  # allowed when bound
    b24emu.emulator.settings = b24emu.emulator.settings.with_overrides(event_hosts="")
    [delivery] = b24emu.fire_event("ONCRMDEALADD", {})["deliveries"]
    assert delivery["status"] == "failed" and "not to 'hooks.test'" in delivery["error"]


def test_installing_an_app_sends_onappinstall_with_a_refresh_token(b24emu, handler):
    installed = b24emu.client.install_app("local.events.app", handler=handler.url,
                                          version="2.1", language="de")
    assert installed["user"] == 1
    [delivery] = b24emu.client.wait_for_deliveries(installed["deliveries"])
    assert delivery["status"] == "delivered"
    params = handler.next()["params"]
    assert params["event"] == "ONAPPINSTALL"
    assert params["data"] == {"VERSION": "2.1", "ACTIVE": "Y", "INSTALLED": "Y",
                              "LANGUAGE_ID": "de"}
    auth = params["auth"]
    assert set(auth) == DOC_AUTH_KEYS | {"refresh_token"}
    renewed = requests.post(b24emu.url + "/oauth/token/", timeout=10, data={
        "grant_type": "refresh_token", "client_id": "local.events.app",
        "client_secret": "eventsclientsecret", "refresh_token": auth["refresh_token"]})
    assert renewed.status_code == 200 and renewed.json()["user_id"] == 1
    # only the installed app hears it, and installing again sends it again
    bind(b24emu, "ONAPPINSTALL", handler.url + "?other", token="devaccesstoken")
    again = b24emu.client.install_app("local.events.app")
    assert len(again["deliveries"]) == 1
    missing = requests.post(b24emu.url + "/_emulator/apps/no.such.app/install", json={},
                            timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.b24emu(clock="2026-03-01T09:00:00+00:00")
def test_onofflineevent_is_sent_at_most_once_per_min_timeout(b24emu, handler):
    assert rest(b24emu, "event.bind", event="ONCRMDEALUPDATE",
                event_type="offline").json()["result"] is True
    bind(b24emu, "ONOFFLINEEVENT", handler.url, options={"minTimeout": 60})
    first = b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 1}})
    assert first["offline"] == 1 and len(first["deliveries"]) == 1
    params = handler.next()["params"]
    assert params["event"] == "ONOFFLINEEVENT" and "data" not in params  # an empty array
    assert "refresh_token" in params["auth"]
    assert b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 2}})["deliveries"] == []
    b24emu.advance_clock(60)
    assert len(b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 3}})["deliveries"]) == 1
    records = rest(b24emu, "event.offline.list").json()["result"]
    assert [r["EVENT_DATA"]["FIELDS"]["ID"] for r in records] == [1, 2, 3]


def test_the_control_api_refuses_bad_input(b24emu):
    def post(body):
        reply = requests.post(b24emu.url + "/_emulator/events", json=body, timeout=10)
        return reply.status_code, reply.json().get("error")

    assert post({"event": "ON CRM"}) == (400, "invalid_parameter")
    assert post({"data": {}}) == (400, "invalid_parameter")
    assert post({"event": "ONCRMDEALADD", "user": 99}) == (400, "invalid_parameter")
    assert post({"event": "ONCRMDEALADD", "user": "1"}) == (400, "invalid_parameter")
    assert post({"event": "ONCRMDEALADD", "portal": "nope"}) == (404, "portal_not_found")
    assert post({"event": "ONCRMDEALADD", "typo": 1}) == (400, "invalid_parameter")
    assert post({"event": "ONCRMDEALADD", "data": {"x": "y" * 70000}}) == (
        400, "invalid_parameter")
    assert post({"event": "ONCRMDEALADD", "data": {"x": "y" * 60000}}) == (202, None)
    listed = requests.get(b24emu.url + "/_emulator/events/deliveries?status=lost", timeout=10)
    assert listed.status_code == 400
    one = requests.get(b24emu.url + "/_emulator/events/deliveries/99999999999999999999",
                       timeout=10)
    assert one.status_code == 404 and one.json()["error"] == "not_found"


def test_the_command_line_fires_and_lists(b24emu, handler, capsys):
    from b24emu.cli import main

    bind(b24emu, "ONCRMDEALUPDATE", handler.url)
    code = main(["events", "fire", "ONCRMDEALUPDATE", "--data", '{"FIELDS": {"ID": 5}}',
                 "--wait", "--url", b24emu.url])
    out = capsys.readouterr().out
    assert code == 0 and "ONCRMDEALUPDATE: 1 deliveries queued" in out
    assert f"{handler.url}: delivered HTTP 200" in out
    assert handler.next()["params"]["auth"]["user_id"] == "1"
    assert main(["events", "fire", "ONCRMDEALUPDATE", "--no-user", "--url", b24emu.url]) == 0
    assert "access_token" not in handler.next()["params"]["auth"]
    capsys.readouterr()
    assert main(["events", "deliveries", "--url", b24emu.url]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["ID", "AT", "(UTC)", "EVENT", "STATUS", "ANSWER",
                                             "URL"]
    assert table.count("ONCRMDEALUPDATE") == 2
    assert main(["events", "handlers", "--url", b24emu.url]) == 0
    assert "local.events.app" in capsys.readouterr().out
    assert main(["events", "fire", "ONCRMDEALUPDATE", "--data", "{nope",
                 "--url", b24emu.url]) == 2
    assert main(["events", "fire", "BAD NAME", "--url", b24emu.url]) == 1


def test_b24emu_serve_with_two_workers_delivers_each_event_once_and_stops_cleanly(tmp_path,
                                                                                   handler):
    """The real server (gunicorn, 2 worker processes): both processes queue and send; each
    delivery is claimed by exactly one; SIGTERM ends the delivery threads with the workers."""
    from b24emu.testing.client import EmulatorClient

    from tests.test_server import Server

    server = Server(tmp_path / "db.sqlite3", "fixtures/default.json",
                    extra_env={"B24EMU_RATE_LIMIT": "off"})
    try:
        reply = requests.post(f"{server.base}/rest/event.bind", timeout=10, json={
            "auth": EVENTS_TOKEN, "event": "ONCRMDEALADD", "handler": handler.url})
        assert reply.json()["result"] is True
        control = EmulatorClient(server.base)
        ids = [control.fire_event("ONCRMDEALADD", {"FIELDS": {"ID": n}})["deliveries"][0]
               for n in range(30)]
        rows = control.wait_for_deliveries(ids, timeout=60)
        assert {row["status"] for row in rows} == {"delivered"}
        got = sorted(int(handler.next()["params"]["data"]["FIELDS"]["ID"]) for _ in ids)
        assert got == list(range(30)) and handler.received.empty()
    finally:
        output = server.stop()
    assert server.process.returncode == 0, output
    assert "Traceback" not in output


def test_offline_events_round_trip_over_http(b24emu):
    """Bind offline, fire, reserve with clear=0, read the same records again with process_id,
    clear them: the queue an app behind a firewall polls."""
    assert rest(b24emu, "event.bind", event="ONCRMDEALUPDATE",
                event_type="offline").json()["result"] is True
    fired = b24emu.fire_event("ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}})
    assert (fired["deliveries"], fired["offline"]) == ([], 1)
    got = rest(b24emu, "event.offline.get", clear=0).json()["result"]
    [record] = got["events"]
    assert record["EVENT_NAME"] == "ONCRMDEALUPDATE" and record["EVENT_DATA"] == {
        "FIELDS": {"ID": 5}}
    assert record["EVENT_ADDITIONAL"] == {"user_id": 1}
    again = rest(b24emu, "event.offline.get", process_id=got["process_id"]).json()["result"]
    assert again == got  # the same process gets its records back (and, clear=1, drops them)
    assert rest(b24emu, "event.offline.list").json()["result"] == []
    assert rest(b24emu, "event.offline.get", process_id=got["process_id"]).json()[
        "result"] == {"process_id": got["process_id"], "events": []}


def test_a_stub_fires_its_events_at_the_bound_handler(b24emu, handler):
    """A stubbed crm.deal.update that names ONCRMDEALUPDATE: calling it delivers the event to
    the handler the app bound, as the portal would after a real update."""
    bind(b24emu, "ONCRMDEALUPDATE", handler.url)
    b24emu.stub("crm.deal.update", result=True,
                events=[{"event": "ONCRMDEALUPDATE", "data": {"FIELDS": {"ID": 7}}}])
    reply = requests.post(b24emu.webhook_url + "crm.deal.update", timeout=10,
                          json={"id": 7, "fields": {"STAGE_ID": "WON"}})
    assert reply.status_code == 200 and reply.json()["result"] is True
    got = handler.next()["params"]
    assert got["event"] == "ONCRMDEALUPDATE" and got["data"] == {"FIELDS": {"ID": "7"}}
    assert got["auth"]["user_id"] == "1"  # the webhook's user caused the update
    [delivery] = b24emu.client.wait_for_deliveries(
        [d["id"] for d in b24emu.deliveries(event="ONCRMDEALUPDATE")])
    assert delivery["status"] == "delivered"
