"""/_emulator/events: fire events at the apps' handlers and see every delivery.

- `POST /_emulator/events` fires an event (`b24emu.events.fire`), as if a user changed something.
- `GET /_emulator/events/deliveries[/<id>]` shows what was sent where, and what came back.
- `GET /_emulator/events/handlers` lists the handlers apps bound with `event.bind`.
- `POST /_emulator/apps/<client_id>/install` installs an app: it becomes active and its
  `ONAPPINSTALL` handlers (and the install handler given, as an app's version card names one)
  receive the event, with a refresh token.
"""

from __future__ import annotations

import json

from b24emu.control.api import bp
from b24emu.control.schemas import (
    MAX_INT,
    ControlError,
    PortalQuery,
    _Paging,
    _Query,
    emulator,
    invalid,
    load_args,
    load_body,
    one,
    page,
    selected_portal,
)
from b24emu.events import fire
from b24emu.events.firing import EVENT_NAME
from b24emu.events.hosts import allowed_hosts, check_handler_url
from b24emu.events.store import DELIVERED, DROPPED, FAILED, QUEUED, SENDING, BindError
from b24emu.rest.errors import BitrixError
from flask import jsonify
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

STATUSES = (QUEUED, SENDING, DELIVERED, FAILED, DROPPED)
INSTALL_EVENT = "ONAPPINSTALL"
FIRST_ADMIN = 0  # `user` absent: the portal's first active admin caused the event
MAX_DATA_BYTES = 65536  # an event's data, as JSON (each queued delivery keeps a copy)


class FireBody(Schema):
    """POST /_emulator/events."""

    class Meta:
        unknown = RAISE

    event = fields.String(required=True, validate=validate.Regexp(
        EVENT_NAME, error="an event name such as ONCRMDEALUPDATE"))
    data = fields.Raw(load_default=dict, allow_none=True)
    portal = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    user = fields.Integer(load_default=FIRST_ADMIN, allow_none=True, strict=True,
                          validate=validate.Range(min=1, max=MAX_INT))
    auth_connector = fields.String(load_default=None, validate=validate.Length(max=255))

    @validates("data")
    def _small_enough(self, value, **kwargs):
        if len(json.dumps(value)) > MAX_DATA_BYTES:
            raise ValidationError(f"larger than {MAX_DATA_BYTES} bytes as JSON")


class DeliveryQuery(_Query, _Paging):
    """Filters of /_emulator/events/deliveries."""

    event = fields.String(validate=validate.Regexp(EVENT_NAME))
    status = fields.String(validate=validate.OneOf(STATUSES))


class InstallBody(Schema):
    """POST /_emulator/apps/<client_id>/install."""

    class Meta:
        unknown = RAISE

    handler = fields.String(load_default=None, validate=validate.Length(min=1, max=2000))
    user = fields.Integer(load_default=None, strict=True,
                          validate=validate.Range(min=1, max=MAX_INT))
    version = fields.String(load_default="1", validate=validate.Length(min=1, max=50))
    language = fields.String(load_default="en", validate=validate.Regexp(r"^[a-z]{2}$"))


def delivery_json(row: dict) -> dict:
    """A delivery as the API shows it."""
    return {"id": row["id"], "event": row["event_name"], "handler_id": row["handler_id"],
            "client_id": row["client_id"], "url": row["url"], "data": row["data"],
            "user_id": row["user_id"] or None, "status": row["status"],
            "created_at": row["created_at"], "sent_at": row["sent_at"],
            "duration": row["duration"], "http_status": row["http_status"],
            "response": row["response"], "error": row["error"]}


def _portal_of(body_portal: str | None) -> str:
    """The body's `portal` (404 if unknown), else the one selected by ?portal= or Host."""
    if body_portal is None:
        return selected_portal()
    if emulator().portals.portal(body_portal) is None:
        raise ControlError(404, "portal_not_found", f"No portal named {body_portal[:200]!r}")
    return body_portal


def _user(portal: str, user_id: int | None) -> int | None:
    if user_id is not None and emulator().portals.user(portal, user_id) is None:
        raise invalid("user", f"no user {user_id} in portal {portal!r}")
    return user_id


@bp.post("/events")
def fire_event():
    """Fire an event: 202 with the deliveries queued and the offline records stored."""
    load_args(PortalQuery())
    body = load_body(FireBody(), required=True)
    emulator().sync()  # the shared clock (the event's time) and the current users
    portal = _portal_of(body["portal"])
    user = body["user"]
    user = _first_admin(emulator(), portal) if user == FIRST_ADMIN else _user(portal, user)
    fired = fire(emulator(), portal, body["event"], body["data"], user,
                 auth_connector=body["auth_connector"])
    return jsonify(portal=portal, **fired), 202


@bp.get("/events/deliveries")
def list_deliveries():
    """Deliveries newest first: status, time, the handler's answer (truncated)."""
    portal = selected_portal()
    args = load_args(DeliveryQuery())
    rows, total = emulator().events.deliveries(
        portal, event=args.get("event"), status=args.get("status"), limit=args["limit"],
        offset=args["offset"])
    return jsonify(page([delivery_json(row) for row in rows], total, args["limit"],
                        args["offset"]))


@bp.get("/events/deliveries/<delivery_id>")
def get_delivery(delivery_id: str):
    """One delivery or 404."""
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(delivery_json(one(emulator().events.delivery, delivery_id, "delivery", portal)))


@bp.get("/events/handlers")
def list_handlers():
    """The handlers every app of the portal has bound."""
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(items=[
        {"id": h.id, "client_id": h.client_id, "event": h.event_name, "handler": h.handler,
         "auth_type": h.user_id, "offline": h.offline, "connector_id": h.connector_id,
         "options": h.options} for h in emulator().events.handlers(portal)])


@bp.post("/apps/<client_id>/install")
def install_app(client_id: str):
    """Install (activate) an app and send it ONAPPINSTALL."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    body = load_body(InstallBody())
    emu.sync()  # the shared clock and the current users
    if len(client_id) > 200 or emu.portals.app(portal, client_id) is None:
        raise ControlError(404, "not_found", f"No app {client_id[:200]!r} in {portal!r}")
    user = _user(portal, body["user"]) or _first_admin(emu, portal)
    if body["handler"] is not None:
        try:
            check_handler_url(body["handler"], allowed_hosts(emu.settings.event_hosts))
        except BitrixError as error:
            raise invalid("handler", error.description) from None
    emu.portals.set_app_active(portal, client_id, True)
    if body["handler"] is not None:
        try:
            emu.events.bind(portal, client_id, INSTALL_EVENT, body["handler"], 0, "", {},
                            emu.clock.now())
        except BindError:
            pass  # bound before: installing again sends it again
    data = {"VERSION": body["version"], "ACTIVE": "Y", "INSTALLED": "Y",
            "LANGUAGE_ID": body["language"]}
    fired = fire(emu, portal, INSTALL_EVENT, data, user, only_app=client_id)
    return jsonify(portal=portal, client_id=client_id, user=user, **fired), 202


def _first_admin(emu, portal: str) -> int | None:
    users = emu.portals.users(portal)
    admins = [user["id"] for user in users if user["admin"] and user["active"]]
    return admins[0] if admins else (users[0]["id"] if users else None)

