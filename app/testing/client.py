"""A small client of the emulator's control API (`/_emulator/`), shared by the CLI and the plugin.

    from b24emu.testing.client import EmulatorClient

    emu = EmulatorClient("http://127.0.0.1:8080")   # token=... if B24EMU_CONTROL_TOKEN is set
    emu.notifications(recipient=2, tag="build-42")  # -> list of notification dicts, newest first
    emu.add_fault("im.notify.personal.add", "QUERY_LIMIT_EXCEEDED", times=1)
    emu.advance_clock(600)
    emu.reset()

Every method returns the decoded JSON of the endpoint (or the interesting part of it) and raises
`EmulatorError` (code and description from the server) on any non-2xx answer, or
`EmulatorUnreachable` when nothing answers at the address.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

__all__ = ["EmulatorClient", "EmulatorError", "EmulatorUnreachable"]

PAGE = 1000  # the control API's largest page
CONTROL_HEADER = "X-B24EMU-Control"  # b24emu.control.access.CONTROL_HEADER (kept import-free)


class EmulatorError(Exception):
    """The control API refused a request: `status`, `code` and `description` are the server's."""

    def __init__(self, status: int | None, code: str, description: str):
        self.status, self.code, self.description = status, code, description
        prefix = f"{status} " if status else ""
        super().__init__(f"{prefix}{code}: {description}" if description else f"{prefix}{code}")


class EmulatorUnreachable(EmulatorError):
    """Nothing answered at the emulator's address (not started, wrong port, timeout)."""

    def __init__(self, url: str, reason: str):
        super().__init__(None, "unreachable", f"cannot reach the emulator at {url} ({reason})")


def _param(value: Any) -> Any:
    """A Python value as a query-string value the control API understands."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class EmulatorClient:
    """The control API of one running emulator.

    `base_url` is the emulator's address (`http://127.0.0.1:8080`; a trailing `/` or
    `/_emulator` is accepted). `token` is B24EMU_CONTROL_TOKEN when the emulator has one.
    `portal` selects a portal by name for every call (default: the one the address's host
    selects, i.e. `default` on 127.0.0.1 and localhost).
    """

    def __init__(self, base_url: str, token: str | None = None, portal: str | None = None, *,
                 timeout: float = 10.0, session: requests.Session | None = None,
                 verify: bool | str = True):
        base = base_url.rstrip("/")
        if base.endswith("/_emulator"):
            base = base[: -len("/_emulator")]
        self.base_url = base
        self.token = token or None
        self.portal = portal or None
        self.timeout = timeout
        self.verify = verify
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"EmulatorClient({self.base_url!r}, portal={self.portal!r})"

    # --- plumbing -----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict | None = None,
                body: Any = None) -> Any:
        """One call of the control API: the decoded JSON answer, or EmulatorError."""
        query = {key: _param(value) for key, value in (params or {}).items()
                 if value is not None}
        if self.portal and "portal" not in query:
            query["portal"] = self.portal
        # The header marks a request no web page can forge (the control API refuses a write
        # without it or a JSON body); it is sent on every call.
        headers = {"Accept": "application/json", CONTROL_HEADER: "1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base_url}/_emulator/{path.lstrip('/')}"
        try:
            response = self.session.request(
                method, url, params=query, headers=headers, timeout=self.timeout,
                verify=self.verify, json=body if body is not None else None)
        except requests.Timeout:
            raise EmulatorUnreachable(self.base_url, "timed out") from None
        except requests.RequestException as error:
            raise EmulatorUnreachable(self.base_url, _reason(error)) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not response.ok:
            if isinstance(data, dict) and "error" in data:
                raise EmulatorError(response.status_code, str(data["error"]),
                                    str(data.get("error_description") or ""))
            text = " ".join(response.text.split())[:200]
            raise EmulatorError(response.status_code, f"http_{response.status_code}",
                                f"{method} {url}: {text}")
        if data is None:
            raise EmulatorError(response.status_code, "not_json",
                                f"{method} {url} did not answer JSON (is this a b24emu?)")
        return data

    def _items(self, path: str, filters: dict) -> list[dict]:
        """A list endpoint's items: one page when `limit` is given, else every match."""
        if "limit" in filters:
            return self.request("GET", path, params=filters)["items"]
        items: list[dict] = []
        offset = filters.pop("offset", 0) or 0
        while True:
            page = self.request("GET", path, params={**filters, "limit": PAGE, "offset": offset})
            items.extend(page["items"])
            if page.get("next") is None:
                return items
            offset = page["next"]

    # --- health and portals -------------------------------------------------------------------

    def health(self) -> dict:
        """`{"status": "ready", "schema_version": N}`."""
        return self.request("GET", "health")

    def portals(self) -> list[dict]:
        """Every portal with its users, webhooks (with their URLs) and apps."""
        return self.request("GET", "portals")["items"]

    # --- notifications ------------------------------------------------------------------------

    def notifications(self, **filters: Any) -> list[dict]:
        """Stored notifications, newest first.

        Filters: recipient, sender, tag, stored_tag, sub_tag, stored_sub_tag, type
        ("personal"/"system"), read (bool), since (unix seconds, ISO string or datetime), text,
        after_id. Without `limit` every match is returned; with it, one page (and `offset`).
        """
        return self._items("notifications", filters)

    def notification(self, notification_id: int) -> dict:
        """One notification (EmulatorError 404 not_found if there is none)."""
        return self.request("GET", f"notifications/{int(notification_id)}")

    def count(self, **filters: Any) -> int:
        """How many notifications match the filters."""
        return self.request("GET", "notifications/count", params=filters)["count"]

    def delete_notifications(self, **filters: Any) -> int:
        """Delete the matching notifications (no filter: all of the portal); how many."""
        return self.request("DELETE", "notifications", params=filters)["deleted"]

    def delete_notification(self, notification_id: int) -> int:
        """Delete one notification (EmulatorError 404 if there is none)."""
        return self.request("DELETE", f"notifications/{int(notification_id)}")["deleted"]

    def mark_read(self, notification_id: int | None = None, *, read: bool = True,
                  **filters: Any) -> int:
        """Mark one notification, or the matching ones (no filter: all), read or unread."""
        if notification_id is not None:
            return self.request("POST", f"notifications/{int(notification_id)}/read",
                                body={"read": read})["changed"]
        return self.request("POST", "notifications/read", params=filters,
                            body={"read": read})["changed"]

    # --- journal ------------------------------------------------------------------------------

    def journal(self, **filters: Any) -> list[dict]:
        """REST calls the emulator answered, newest first.

        Filters: method, status, error, request_id, user, since; `limit`/`offset` as for
        `notifications`.
        """
        return self._items("journal", filters)

    def journal_entry(self, entry_id: int) -> dict:
        """One journal entry."""
        return self.request("GET", f"journal/{int(entry_id)}")

    def clear_journal(self) -> int:
        """Forget the journal; how many entries there were."""
        return self.request("DELETE", "journal")["deleted"]

    # --- reset and seed -----------------------------------------------------------------------

    def reset(self, scope: str = "all") -> dict:
        """`data`: drop notifications and journal; `all`: also faults, limits and the portal's
        users/webhooks/apps reloaded from its fixture. `{"portal", "removed": {...}}`."""
        return self.request("POST", "reset", body={"scope": scope})

    def seed(self, fixture: dict | str | Path) -> dict:
        """Load (or replace) a portal from a fixture document or a path to one; the counts."""
        if isinstance(fixture, (str, Path)):
            fixture = json.loads(Path(fixture).read_text(encoding="utf-8"))
        return self.request("POST", "seed", body=fixture)

    # --- faults -------------------------------------------------------------------------------

    def add_fault(self, method: str, error: str | None = None, *, status: int | None = None,
                  description: str | None = None, latency: float | None = None,
                  times: int | None = None, probability: float | None = None) -> dict:
        """Make `method` (or "*" for every method) fail with `error` and/or answer late.

        Known codes get the portal's description and status (QUERY_LIMIT_EXCEEDED: 503,
        OPERATION_TIME_LIMIT: 429, expired_token: 401, ...). `times` limits how many calls it
        hits (default: until cleared); `probability` makes it fire on a share of calls.
        """
        body = {"method": method, "error": error, "status": status, "description": description,
                "latency": latency, "times": times, "probability": probability}
        return self.request("POST", "faults",
                            body={key: value for key, value in body.items() if value is not None})

    def faults(self) -> list[dict]:
        """The armed faults, oldest first."""
        return self.request("GET", "faults")["items"]

    def delete_fault(self, fault_id: int) -> int:
        """Disarm one fault."""
        return self.request("DELETE", f"faults/{int(fault_id)}")["deleted"]

    def clear_faults(self) -> int:
        """Disarm every fault; how many there were."""
        return self.request("DELETE", "faults")["deleted"]

    # --- stubs --------------------------------------------------------------------------------

    def add_stub(self, method: str, **fields: Any) -> dict:
        """Answer `method` with a stub (see README "Stubs, recording and verify"): `result=`
        (any JSON) or `error=` (+ `error_description`, `status`); optional `params` to match,
        `sequence`, `latency`, `scope`, `override`, `list`, `events`. The stored stub."""
        return self.request("POST", "stubs", body={"method": method, **fields})

    def add_stubs(self, stubs: list[dict]) -> list[dict]:
        """Store several stub documents at once (all or none)."""
        return self.request("POST", "stubs", body=list(stubs))["items"]

    def stubs(self) -> list[dict]:
        """The portal's stubs, oldest first, with `hits`."""
        return self.request("GET", "stubs")["items"]

    def delete_stub(self, stub_id: int) -> int:
        """Remove one stub."""
        return self.request("DELETE", f"stubs/{int(stub_id)}")["deleted"]

    def clear_stubs(self) -> int:
        """Remove every stub; how many there were."""
        return self.request("DELETE", "stubs")["deleted"]

    # --- clock --------------------------------------------------------------------------------

    def clock(self) -> dict:
        """`{"now": unix float, "iso": str, "frozen": bool, "offset": seconds}`."""
        return self.request("GET", "clock")

    def move_clock(self, *, set: float | str | datetime | None = None,
                   advance: float | None = None, freeze: bool | None = None) -> dict:
        """Set, then advance, then freeze/unfreeze the clock in one call; the new clock."""
        body: dict[str, Any] = {}
        if set is not None:
            body["set"] = set.isoformat() if isinstance(set, datetime) else set
        if advance is not None:
            body["advance"] = advance
        if freeze is not None:
            body["freeze"] = freeze
        return self.request("POST", "clock", body=body)

    def freeze_clock(self) -> dict:
        """Stop the clock where it is."""
        return self.move_clock(freeze=True)

    def advance_clock(self, seconds: float) -> dict:
        """Move the clock forward (frozen or running)."""
        return self.move_clock(advance=seconds)

    def set_clock(self, when: float | str | datetime) -> dict:
        """Jump to an instant: unix seconds, ISO 8601 (naive = the portal's zone) or datetime."""
        return self.move_clock(set=when)

    def release_clock(self) -> dict:
        """Back to real time (not frozen, no offset)."""
        return self.request("DELETE", "clock")

    # --- events -------------------------------------------------------------------------------

    def fire_event(self, event: str, data: Any = None, *, user: int | None | object = ...,
                   auth_connector: str | None = None, portal: str | None = None) -> dict:
        """Fire an event at the apps' handlers: `{"event", "portal", "deliveries": [ids],
        "offline": n}`. `user`: who caused it (default: the portal's first admin; None: nobody,
        so handlers get no tokens)."""
        body: dict[str, Any] = {"event": event, "data": {} if data is None else data}
        if user is not ...:
            body["user"] = user
        if auth_connector is not None:
            body["auth_connector"] = auth_connector
        if portal is not None:
            body["portal"] = portal
        return self.request("POST", "events", body=body)

    def deliveries(self, **filters: Any) -> list[dict]:
        """Event deliveries, newest first (filters `event`, `status`, `limit`, `offset`)."""
        return self._items("events/deliveries", filters)

    def delivery(self, delivery_id: int) -> dict:
        """One delivery: status, HTTP status, the handler's answer (truncated), error."""
        return self.request("GET", f"events/deliveries/{int(delivery_id)}")

    def wait_for_deliveries(self, ids: list[int], timeout: float = 15.0) -> list[dict]:
        """Poll until every delivery has finished (delivered, failed or dropped); they are
        returned in `ids` order. EmulatorError `timeout` if one is still pending at the deadline."""
        deadline = time.monotonic() + timeout
        pending = list(ids)
        done: dict[int, dict] = {}
        while True:
            for delivery_id in list(pending):
                row = self.delivery(delivery_id)
                if row["status"] not in ("queued", "sending"):
                    done[delivery_id] = row
                    pending.remove(delivery_id)
            if not pending:
                return [done[delivery_id] for delivery_id in ids]
            if time.monotonic() > deadline:
                raise EmulatorError(None, "timeout", f"deliveries {pending} still pending "
                                                     f"after {timeout:g} s")
            time.sleep(0.02)

    def event_handlers(self) -> list[dict]:
        """The handlers the portal's apps bound with event.bind."""
        return self.request("GET", "events/handlers")["items"]

    def install_app(self, client_id: str, *, handler: str | None = None,
                    user: int | None = None, version: str | None = None,
                    language: str | None = None) -> dict:
        """Install an app: it becomes active and receives ONAPPINSTALL (at `handler` too)."""
        body = {key: value for key, value in (("handler", handler), ("user", user),
                                              ("version", version), ("language", language))
                if value is not None}
        return self.request("POST", f"apps/{client_id}/install", body=body)


def _reason(error: requests.RequestException) -> str:
    """A one-line reason for a connection failure."""
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Temporary failure in name resolution", "certificate verify failed"):
        if marker in text:
            return marker.lower()
    return type(error).__name__
