"""Shared fixtures: an app on a temporary database with a manual clock, its client, and helpers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from b24emu import create_app
from b24emu.clock import ManualClock
from b24emu.settings import Settings
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
TEST_PORTAL = Path(__file__).parent / "data" / "portal.json"
CAPTURES = Path(__file__).parent / "data" / "wire-captures"  # copied from real clients
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test moves it."""
    return ManualClock(T0)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for one test: its own SQLite file, the test portal."""
    return Settings(db=str(tmp_path / "b24emu.sqlite3"), fixtures=str(TEST_PORTAL))


@pytest.fixture
def app(settings, clock):
    """The emulator on a fresh database."""
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app):
    """Flask's test client for the emulator; like the control client and the CLI it sends the
    header that lets a bodiless control write through (b24emu.control.access)."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_X_B24EMU_CONTROL"] = "1"
    return test_client


@pytest.fixture
def emulator(app):
    """The running emulator's context (stores, clock, settings)."""
    return app.extensions["b24emu"]


class Rest:
    """Call REST methods the way a client does, through the webhook or an OAuth token."""

    def __init__(self, client):
        self.client = client

    def webhook(self, method: str, params: dict | None = None, *, user: int | str = 1,
                code: str = "devtoken", suffix: str = ".json"):
        """POST a JSON body to the webhook URL; returns the response."""
        return self.client.post(f"/rest/{user}/{code}/{method}{suffix}", json=params or {})

    def oauth(self, method: str, params: dict | None = None, *, token: str = "devaccesstoken"):
        """POST a JSON body with `auth` to the OAuth URL."""
        return self.client.post(f"/rest/{method}.json", json={**(params or {}), "auth": token})

    def result(self, method: str, params: dict | None = None, **kwargs):
        """The `result` of a webhook call that must succeed."""
        response = self.webhook(method, params, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["result"]


@pytest.fixture
def rest(client) -> Rest:
    """REST call helper."""
    return Rest(client)


def load_captures(name: str) -> list[dict]:
    """The requests one real client library sent (shared/wire-captures)."""
    return json.loads((CAPTURES / f"{name}.json").read_text())


# A portal whose one app reads the offline event queue (event.offline.* need an admin's token).
QUEUE_PORTAL = {
    "users": [{"id": 1, "name": "Ada", "admin": True}],
    "apps": [{"client_id": "local.queue.app", "client_secret": "s", "scopes": ["crm"],
              "tokens": [{"access_token": "admintoken", "user_id": 1,
                          "expires_at": "2099-01-01T00:00:00+00:00"}]}],
}


def queue_app(settings, clock, tmp_path):
    """The emulator on QUEUE_PORTAL with event delivery off: fired events stay queued."""
    fixture = tmp_path / "queue-portal.json"
    fixture.write_text(json.dumps(QUEUE_PORTAL))
    app = create_app(settings.with_overrides(fixtures=str(fixture)), clock=clock)
    app.extensions["b24emu"].deliveries.wake = lambda: None  # queue only
    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@contextmanager
def serving(wsgi_app) -> Iterator:
    """`wsgi_app` on a real HTTP server on 127.0.0.1 (a thread per request, no access log)
    while the block runs; the server's `url` is set."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
