"""/_emulator/journal: every REST call of a portal, newest first, secrets masked."""

from __future__ import annotations

from b24emu.control.api import bp
from b24emu.control.schemas import (
    JournalQuery,
    PortalQuery,
    emulator,
    load_args,
    one,
    page,
    selected_portal,
    to_unix,
)
from b24emu.store.control import JournalFilter
from flask import jsonify

FIELDS = ("id", "request_id", "at", "http_method", "path", "method", "auth_type", "credential",
          "user_id", "client_ip", "params", "status", "error", "duration", "stub_id")


def entry_json(row: dict) -> dict:
    """One journal entry as the API shows it."""
    return {name: row.get(name) for name in FIELDS}


@bp.get("/journal")
def list_journal():
    """Filtered, paged, newest first."""
    emu = emulator()
    portal = selected_portal()
    args = load_args(JournalQuery())
    since = args.get("since")
    flt = JournalFilter(
        method=args.get("method"), status=args.get("status"), error=args.get("error"),
        request_id=args.get("request_id"), user_id=args.get("user"),
        since=to_unix(since, emu.zone) if since is not None else None)
    rows = emu.control.journal(portal, flt, limit=args["limit"], offset=args["offset"])
    total = emu.control.journal_count(portal, flt)
    return jsonify(page([entry_json(row) for row in rows], total, args["limit"],
                        args["offset"]))


@bp.get("/journal/<entry_id>")
def get_journal_entry(entry_id: str):
    """One entry or 404."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(entry_json(one(emu.control.journal_entry, entry_id, "journal entry", portal)))


@bp.delete("/journal")
def clear_journal():
    """Forget the portal's journal."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(deleted=emu.control.clear_journal(portal))

