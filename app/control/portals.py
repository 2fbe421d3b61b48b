"""/_emulator/portals, /_emulator/seed and /_emulator/reset: what portals exist, and their state.

A seeded portal is remembered (key `fixture:<portal>` of the `control` table) as the rows it
loaded, tokens and client secrets as SHA-256 digests, so `reset` with scope `all` can bring the
portal's users, webhooks, apps and tokens back. A portal seeded at start-up from B24EMU_FIXTURES
is reloaded from that file.
"""

from __future__ import annotations

import json

from b24emu.control.api import bp
from b24emu.control.schemas import (
    ControlError,
    PortalQuery,
    ResetBody,
    emulator,
    load_args,
    load_body,
    selected_portal,
)
from b24emu.store.fixtures import FixtureError, load_fixture_file, parse_fixture
from b24emu.store.portals import portal_rows
from flask import jsonify, request

FIXTURE_KEY = "fixture:{}"


def remember_fixture(database, portal: dict) -> None:
    """Keep the rows a portal was seeded with: tokens and client secrets only as digests."""
    with database.write() as db:
        db.execute("INSERT OR REPLACE INTO control (key, value) VALUES (?, ?)",
                   [FIXTURE_KEY.format(portal["name"]), json.dumps({"rows": portal_rows(portal)})])


def reload_portal(emu, name: str) -> bool:
    """Load a portal back as it was last seeded (remembered rows, else the fixture file)."""
    rows = emu.database.query("SELECT value FROM control WHERE key = ?",
                              (FIXTURE_KEY.format(name),))
    if rows:
        emu.portals.load_rows(json.loads(rows[0]["value"])["rows"])
        return True
    if emu.settings.fixtures:
        try:
            parsed = load_fixture_file(emu.settings.fixtures)
        except FixtureError:
            return False
        if parsed["name"] == name:
            emu.portals.load(parsed)
            return True
    return False


def _base_url(emu, portal: dict, own: str) -> str:
    """Where a client reaches a portal: the request's host for its own portal, else the
    portal's domain on the request's port."""
    if portal["name"] == own:
        host = request.host
    else:
        _, colon, port = request.host.rpartition(":")
        port_part = f":{port}" if colon and port.isdigit() else ""
        host = f"{portal['domain']}{port_part}"
    return f"{request.scheme}://{host}"


@bp.get("/portals")
def list_portals():
    """Every portal with its users, webhooks (and their URLs) and OAuth apps."""
    emu = emulator()
    load_args(PortalQuery())
    own = emu.portal_for_host(request.host)
    items = []
    for portal in emu.database.query("SELECT * FROM portals ORDER BY name"):
        name = portal["name"]
        base = _base_url(emu, portal, own)
        apps = emu.database.query(
            "SELECT client_id, name, scopes FROM apps WHERE portal = ? ORDER BY client_id",
            (name,))
        items.append({
            "name": name, "domain": portal["domain"], "timezone": portal["timezone"],
            "users": [{key: user[key] for key in ("id", "login", "name", "last_name", "active",
                                                  "admin")} for user in emu.portals.users(name)],
            "webhooks": [{"id": hook["id"], "user_id": hook["user_id"], "scopes": hook["scopes"],
                          "url": f"{base}/rest/{hook['user_id']}/{hook['code']}/"}
                         for hook in emu.portals.webhooks(name)],
            "apps": [{"client_id": app["client_id"], "name": app["name"],
                      "scopes": json.loads(app["scopes"] or "[]")} for app in apps],
        })
    return jsonify(items=items)


@bp.post("/seed")
def seed():
    """Load (or replace) the portal a fixture document describes."""
    emu = emulator()
    load_args(PortalQuery())
    document = request.get_json(force=True, silent=True)
    try:
        parsed = parse_fixture(document)
    except FixtureError as error:
        raise ControlError(400, "invalid_fixture", str(error)) from None
    taken = emu.database.query(
        "SELECT name FROM portals WHERE lower(domain) = lower(?) AND name != ?",
        (parsed["domain"], parsed["name"]))
    if taken:
        raise ControlError(400, "invalid_fixture",
                           f"domain: {parsed['domain']!r} is the domain of portal "
                           f"{taken[0]['name']!r}")
    emu.portals.load(parsed)
    remember_fixture(emu.database, parsed)
    return jsonify(portal=parsed["name"], domain=parsed["domain"], users=len(parsed["users"]),
                   webhooks=len(parsed["webhooks"]), apps=len(parsed["apps"]))


@bp.post("/reset")
def reset():
    """`data`: notifications and journal; `all`: also faults, limits and the fixture's portal."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    body = load_body(ResetBody())
    everything = body["scope"] == "all"
    removed = emu.control.reset(portal, everything=everything)
    reloaded = everything and reload_portal(emu, portal)
    return jsonify(portal=portal, scope=body["scope"], removed=removed, reloaded=reloaded)
