"""Firing an event: every handler bound to it gets a queued delivery or an offline record.

This is the one entry point for everything that makes an event happen: the control API
(`POST /_emulator/events`), the pytest plugin (`b24emu.fire_event`), the CLI
(`b24emu events fire`), app installation (`ONAPPINSTALL`) and stubbed methods:

    from b24emu.events import fire
    fire(emulator, "default", "ONCRMDEALUPDATE", {"FIELDS": {"ID": 5}}, user_id=1)
"""

from __future__ import annotations

import re

from b24emu.events.catalog import SENDS_REFRESH_TOKEN

EVENT_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
OFFLINE_NOTICE = "ONOFFLINEEVENT"
DEFAULT_MIN_TIMEOUT = 1  # seconds between two onOfflineEvent notifications (the docs' default)


def fire(emulator, portal: str, event: str, data=None, user_id: int | None = None, *,
         auth_connector: str | None = None, base_url: str | None = None,
         only_app: str | None = None) -> dict:
    """Fire `event` on `portal` as if user `user_id` (None: no user) caused it.

    Online handlers get a delivery queued (sent in the background, see
    `b24emu.events.worker`); offline handlers get a record in their app's offline queue, except
    the queue whose `auth_connector` caused the change. Apps whose offline queue got a record are
    notified through their `ONOFFLINEEVENT` handlers (at most once per `minTimeout`).
    `only_app` limits the event to one application's handlers (ONAPPINSTALL goes to the app
    being installed only). Returns `{"event", "deliveries": [ids], "offline": records stored}`.
    """
    name = event.upper()
    data = {} if data is None else data
    base = base_url or _base_url(emulator)
    now = emulator.clock.now()
    events = emulator.events
    queued: list[int] = []
    offline = 0
    touched_apps: set[str] = set()
    for handler in events.handlers(portal, event_name=name, client_id=only_app):
        if not _app_active(emulator, portal, handler.client_id):
            continue
        if handler.offline:
            if auth_connector and handler.connector_id == auth_connector:
                continue  # the change came through this queue's own connector
            additional = {"user_id": user_id} if user_id else None
            events.store_offline(handler, data, additional, now)
            offline += 1
            touched_apps.add(handler.client_id)
            continue
        queued.append(_enqueue(events, handler, data, user_id, now, base))
    for client_id in sorted(touched_apps):
        for handler in events.handlers(portal, client_id=client_id, event_name=OFFLINE_NOTICE):
            timeout = handler.options.get("minTimeout", DEFAULT_MIN_TIMEOUT)
            if not handler.offline and events.take_notification_slot(handler.id, now, timeout):
                queued.append(_enqueue(events, handler, [], user_id, now, base))
    if queued:
        emulator.deliveries.wake()
    return {"event": name, "deliveries": queued, "offline": offline}


def _enqueue(events, handler, data, user_id: int | None, now: float, base_url: str) -> int:
    """Queue one delivery; its user is the handler's `auth_type`, else who caused the event."""
    delivery_id, _status = events.enqueue(
        handler, data, handler.user_id or user_id or 0, now,
        refresh_token=handler.event_name in SENDS_REFRESH_TOKEN, base_url=base_url)
    return delivery_id


def _app_active(emulator, portal: str, client_id: str) -> bool:
    app = emulator.portals.app(portal, client_id)
    return bool(app and app["active"])


def _base_url(emulator) -> str:
    """The emulator's address as the event's caller sees it: the current request's, else the
    configured host and port."""
    from b24emu.rest.fast import CURRENT_REQUEST
    from flask import has_request_context, request

    current = CURRENT_REQUEST.get()
    if current is not None:
        return f"{current.scheme}://{current.host}"
    if has_request_context():
        return f"{request.scheme}://{request.host}"
    settings = emulator.settings
    scheme = "https" if settings.tls else "http"
    return f"{scheme}://{settings.host}:{settings.port}"
