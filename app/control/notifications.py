"""/_emulator/notifications: read, count, mark read and delete what the portal stored."""

from __future__ import annotations

from b24emu.control.api import bp
from b24emu.control.schemas import (
    SYSTEM,
    ControlError,
    NotificationFilterQuery,
    NotificationListQuery,
    PortalQuery,
    ReadBody,
    emulator,
    iso,
    load_args,
    load_body,
    page,
    selected_portal,
    to_unix,
)
from b24emu.store.notifications import TAG_PREFIX_LENGTH, NotificationFilter
from flask import jsonify

MAX_ID = 2**63 - 1


def plain_tag(stored: str | None) -> str:
    """The tag a client sent: the stored tag without the app prefix `MP|xxxxx|`."""
    stored = stored or ""
    if stored.startswith("MP|") and stored[8:9] == "|":
        return stored[TAG_PREFIX_LENGTH:]
    return stored


def notification_json(row: dict, zone) -> dict:
    """The one shape of a notification in the control API."""
    return {
        "id": row["id"], "portal": row["portal"], "recipient_id": row["recipient_id"],
        "sender_id": row["sender_id"],
        "type": "system" if row["notify_type"] == SYSTEM else "personal",
        "notify_type": row["notify_type"], "module": row["module"], "event": row["event"],
        "message": row["message"], "message_out": row["message_out"],
        "tag": plain_tag(row["notify_tag"]), "stored_tag": row["notify_tag"] or "",
        "sub_tag": plain_tag(row["notify_sub_tag"]),
        "stored_sub_tag": row["notify_sub_tag"] or "", "attach": row["attach"],
        "created_at": row["created_at"], "created": iso(row["created_at"], zone),
        "read": bool(row["is_read"]), "read_at": row["read_at"], "method": row["method"],
        "auth_type": row["auth_type"], "credential": row["credential"],
        "request_id": row.get("request_id"),
    }


def notification_filter(args: dict, zone) -> NotificationFilter:
    """The store's filter for validated query parameters."""
    since = args.get("since")
    after = args.get("after_id")
    return NotificationFilter(
        recipient_id=args.get("recipient"), sender_id=args.get("sender"),
        notify_tag=args.get("stored_tag"), tag=args.get("tag"),
        notify_sub_tag=args.get("stored_sub_tag"), sub_tag=args.get("sub_tag"),
        notify_type=args.get("type"), is_read=args.get("read"),
        since=to_unix(since, zone) if since is not None else None,
        text=args.get("text"),
        min_id=after + 1 if after is not None and after < MAX_ID else None,
        ids=() if after is not None and after >= MAX_ID else None,
    )


def _id(notification_id: str) -> int:
    if not notification_id.isdigit() or len(notification_id) > 18:
        raise ControlError(404, "not_found", "No such notification")
    return int(notification_id)


@bp.get("/notifications")
def list_notifications():
    """Newest first, filtered, paged."""
    emu = emulator()
    portal = selected_portal()
    args = load_args(NotificationListQuery())
    flt = notification_filter(args, emu.zone)
    rows = emu.notifications.query(portal, flt, limit=args["limit"], offset=args["offset"])
    total = emu.notifications.count_matching(portal, flt)
    return jsonify(page([notification_json(row, emu.zone) for row in rows], total,
                        args["limit"], args["offset"]))


@bp.get("/notifications/count")
def count_notifications():
    """How many match the filters."""
    emu = emulator()
    portal = selected_portal()
    flt = notification_filter(load_args(NotificationFilterQuery()), emu.zone)
    return jsonify(count=emu.notifications.count_matching(portal, flt))


@bp.get("/notifications/<notification_id>")
def get_notification(notification_id: str):
    """One notification or 404."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    row = emu.notifications.get(portal, _id(notification_id))
    if row is None:
        raise ControlError(404, "not_found", f"No notification {notification_id} in {portal!r}")
    return jsonify(notification_json(row, emu.zone))


@bp.delete("/notifications/<notification_id>")
def delete_notification(notification_id: str):
    """Delete one notification."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    deleted = emu.notifications.delete_matching(
        portal, NotificationFilter(ids=(_id(notification_id),)))
    if not deleted:
        raise ControlError(404, "not_found", f"No notification {notification_id} in {portal!r}")
    return jsonify(deleted=len(deleted))


@bp.delete("/notifications")
def delete_notifications():
    """Delete the matching notifications (no filter: all of the portal)."""
    emu = emulator()
    portal = selected_portal()
    flt = notification_filter(load_args(NotificationFilterQuery()), emu.zone)
    return jsonify(deleted=len(emu.notifications.delete_matching(portal, flt)))


@bp.post("/notifications/<notification_id>/read")
def read_notification(notification_id: str):
    """Mark one notification read (`{"read": false}`: unread)."""
    emu = emulator()
    emu.sync()
    portal = selected_portal()
    load_args(PortalQuery())
    body = load_body(ReadBody())
    number = _id(notification_id)
    if emu.notifications.get(portal, number) is None:
        raise ControlError(404, "not_found", f"No notification {notification_id} in {portal!r}")
    changed = emu.notifications.mark_read(portal, NotificationFilter(ids=(number,)),
                                          read=body["read"], now=emu.clock.now())
    return jsonify(changed=changed)


@bp.post("/notifications/read")
def read_notifications():
    """Mark the matching notifications read or unread (no filter: all of the portal)."""
    emu = emulator()
    emu.sync()
    portal = selected_portal()
    flt = notification_filter(load_args(NotificationFilterQuery()), emu.zone)
    body = load_body(ReadBody())
    return jsonify(changed=emu.notifications.mark_read(portal, flt, read=body["read"],
                                                       now=emu.clock.now()))
