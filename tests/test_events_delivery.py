"""Events over real HTTP: the emulator POSTs to a handler server in the test, as a portal does.

The handler server decodes each body with PHP's rules (`b24emu.rest.params.parse_php_query`) and
with b24pysdk's own event parser, and can call the emulator back with the `auth` it received.
"""

from __future__ import annotations

import json
import queue
import threading
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
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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


def bind(b24emu, event: str, url: str, **params) -> None:
    reply = rest(b24emu, "event.bind", event=event, handler=url, **params)
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
