"""An emulator running inside the test process: a real WSGI server on a free port, in a thread.

`RunningEmulator` is what the pytest fixture `b24emu` yields; it also works on its own:

    with RunningEmulator.start(db="/tmp/t.sqlite3") as emu:
        requests.post(emu.webhook_url + "im.notify.personal.add", json={...})
        emu.notifications(recipient=2)
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from b24emu.testing.client import EmulatorClient

PACKAGED_FIXTURE = Path(__file__).resolve().parent / "default.json"
CHECKOUT_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "default.json"


def default_fixture() -> Path:
    """The default portal: the copy shipped in the package, else the source checkout's file."""
    for candidate in (PACKAGED_FIXTURE, CHECKOUT_FIXTURE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("b24emu: the default portal fixture (default.json) is missing; "
                            "pass fixtures=... to the b24emu marker")


class RunningEmulator:
    """A started emulator: its addresses, credentials, control client and shortcuts."""

    def __init__(self, app, server, thread, fixture: dict):
        self.app = app
        self.emulator = app.extensions["b24emu"]  # stores, clock, settings (in-process access)
        self._server, self._thread = server, thread
        self.fixture = fixture
        self.url = f"http://127.0.0.1:{server.server_port}"
        self.port = server.server_port
        name = fixture.get("name") or "default"
        token = self.emulator.settings.control_token or None
        self.client = EmulatorClient(self.url, token=token,
                                     portal=None if name == "default" else name)
        hooks = fixture.get("webhooks") or []
        hook = next((h for h in hooks if "im" in h["scopes"]), hooks[0] if hooks else None)
        self.webhook_url = self.webhook(hook["user_id"], hook["code"]) if hook else None
        self.oauth_token = _usable_token(fixture, self.emulator.clock.now())
        self.start_clock: Any = None

    @classmethod
    def start(cls, *, db: str | Path, fixtures: str | Path | None = None,
              rate_limit: str = "off", clock: Any = None, **settings: Any) -> RunningEmulator:
        """Migrate `db`, load the fixture, serve on 127.0.0.1:<free port> in a daemon thread.

        `clock`: None runs in real time; "frozen" stops the clock at the current time; a number
        (unix seconds), an ISO 8601 string or a datetime stops it at that instant. Any other
        keyword is a `Settings` field (timezone, journal_max, operating_costs, control_token...).
        """
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs):  # the test's output stays the test's
                pass

        from b24emu import create_app
        from b24emu.settings import Settings
        from b24emu.store.fixtures import load_fixture_file

        fixture_path = Path(fixtures) if fixtures else default_fixture()
        fixture = load_fixture_file(fixture_path)
        config = Settings(**{"log_level": "WARNING", **settings}).with_overrides(
            db=str(db), fixtures=str(fixture_path), rate_limit=rate_limit, host="127.0.0.1")
        app = create_app(config)
        if clock is not None:
            _freeze(app.extensions["b24emu"], clock)
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="b24emu-server",
                                  kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running = cls(app, server, thread, fixture)
        running.start_clock = clock
        return running

    def restore(self) -> None:
        """Back to the state at start: `reset("all")`, no faults, the starting clock."""
        self.client.reset("all")
        self.client.clear_faults()
        if self.start_clock is None:
            self.client.release_clock()
        else:
            _freeze(self.emulator, self.start_clock)

    def stop(self) -> None:
        """Stop serving and event deliveries, and close the database."""
        self._server.shutdown()
        self.emulator.deliveries.stop()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.client.session.close()
        self.emulator.database.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<b24emu at {self.url}>"

    # --- addresses ----------------------------------------------------------------------------

    def webhook(self, user_id: int | str, code: str) -> str:
        """The webhook URL of `user_id` with `code` (ends with `/`)."""
        return f"{self.url}/rest/{user_id}/{code}/"

    @property
    def oauth_url(self) -> str:
        """Where OAuth calls go: `<url>/rest/<method>` with the token in `auth`."""
        return f"{self.url}/rest/"

    # --- shortcuts of the control client ------------------------------------------------------

    def notifications(self, **filters: Any) -> list[dict]:
        """Stored notifications, newest first (see `EmulatorClient.notifications`)."""
        return self.client.notifications(**filters)

    def notification(self, notification_id: int) -> dict:
        """One stored notification."""
        return self.client.notification(notification_id)

    def count(self, **filters: Any) -> int:
        """How many notifications match."""
        return self.client.count(**filters)

    def journal(self, **filters: Any) -> list[dict]:
        """REST calls answered, newest first."""
        return self.client.journal(**filters)

    def reset(self, scope: str = "all") -> dict:
        """Forget notifications and journal (`data`), and faults, limits, portal (`all`)."""
        return self.client.reset(scope)

    def fault(self, method: str = "*", error: str | None = None, **options: Any) -> dict:
        """Arm a fault (see `EmulatorClient.add_fault`): e.g. `fault("im.notify.personal.add",
        "QUERY_LIMIT_EXCEEDED", times=1)`."""
        return self.client.add_fault(method, error, **options)

    def clear_faults(self) -> int:
        """Disarm every fault."""
        return self.client.clear_faults()

    def stub(self, method: str, **fields: Any) -> dict:
        """Answer a REST method the emulator does not emulate: e.g. `stub("crm.deal.get",
        params={"ID": 5}, result={"ID": "5", "TITLE": "Deal"})` (see `EmulatorClient.add_stub`).
        """
        return self.client.add_stub(method, **fields)

    def stubs(self) -> list[dict]:
        """The stubs, oldest first, with how many calls each answered."""
        return self.client.stubs()

    def clear_stubs(self) -> int:
        """Remove every stub."""
        return self.client.clear_stubs()

    def now(self) -> float:
        """The emulator's current time (unix seconds)."""
        return self.client.clock()["now"]

    def freeze_clock(self) -> dict:
        """Stop the emulator's clock."""
        return self.client.freeze_clock()

    def advance_clock(self, seconds: float) -> dict:
        """Move the emulator's clock forward."""
        return self.client.advance_clock(seconds)

    def set_clock(self, when: float | str | datetime) -> dict:
        """Jump the emulator's clock to an instant."""
        return self.client.set_clock(when)

    def release_clock(self) -> dict:
        """Back to real time."""
        return self.client.release_clock()

    def fire_event(self, event: str, data: Any = None, *, user: Any = ..., wait: bool = True,
                   **options: Any) -> dict:
        """Fire an event at the apps' handlers (see `EmulatorClient.fire_event`). With `wait`
        (default) it returns once every delivery has finished, with the deliveries themselves
        (status, HTTP status, the handler's answer) under `deliveries`."""
        fired = self.client.fire_event(event, data, user=user, **options)
        if wait and fired["deliveries"]:
            timeout = self.emulator.deliveries.timeout * 2 + 5
            fired["deliveries"] = self.client.wait_for_deliveries(fired["deliveries"], timeout)
        return fired

    def deliveries(self, **filters: Any) -> list[dict]:
        """Event deliveries, newest first (filters `event`, `status`)."""
        return self.client.deliveries(**filters)


def _freeze(emulator, clock: Any) -> None:
    """Stop the emulator's clock at the start (see `RunningEmulator.start`)."""
    from b24emu.store.control import ClockState

    if clock == "frozen":
        when = emulator.clock.base.now()
    elif isinstance(clock, datetime):
        when = (clock if clock.tzinfo else clock.replace(tzinfo=emulator.zone)).timestamp()
    elif isinstance(clock, str):
        try:
            when = float(clock)
        except ValueError:
            moment = datetime.fromisoformat(clock.replace("Z", "+00:00"))
            when = (moment if moment.tzinfo else moment.replace(tzinfo=emulator.zone)).timestamp()
    else:
        when = float(clock)
    emulator.control.set_clock(ClockState(frozen_at=when))
    emulator.sync()


def _usable_token(fixture: dict, now: float) -> str | None:
    """The first OAuth access token of an active app that is not expired (im scope preferred)."""
    candidates = []
    for app in fixture.get("apps") or []:
        if not app.get("active", True):
            continue
        for token in app.get("tokens") or []:
            if token["expires_at"].timestamp() > now:
                scopes = token.get("scopes") or app.get("scopes") or []
                candidates.append(("im" not in scopes, token["access_token"]))
    return sorted(candidates, key=lambda c: c[0])[0][1] if candidates else None
