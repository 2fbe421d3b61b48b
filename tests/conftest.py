"""Shared fixtures: an app on a temporary database with a manual clock, its client, and helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from b24emu import create_app
from b24emu.clock import ManualClock
from b24emu.settings import Settings

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
