"""Portals: their users, incoming webhooks, OAuth applications and tokens.

Tokens and client secrets are stored and looked up by their SHA-256, never by the secret itself,
and the final comparison is constant-time (`hmac.compare_digest`). Webhook codes are kept as they
are: the control API shows each webhook's ready-to-use URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from b24emu.store.db import Database, note_control_change
from b24emu.stubs.store import replace_fixture_stubs

DEFAULT_PORTAL = "default"
VERSION_KEY = "portals_version"  # control-table row bumped whenever a portal is (re)loaded
ACCESS_TOKEN_LIFETIME = 3600  # seconds: an access token lives one hour (`expires_in`)
REFRESH_TOKEN_LIFETIME = 180 * 86400  # an issued refresh token lives 180 days
# A refresh token written in a fixture works until it is used (2100-01-01T00:00:00Z).
FIXTURE_REFRESH_EXPIRES_AT = 4_102_444_800.0


def token_hash(token: str) -> str:
    """The key a token is stored under."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class PortalStore:
    """Read and seed the portal description (what a fixture file holds)."""

    def __init__(self, database: Database):
        self.database = database
        # Users and webhooks by key, read once per process; any process that loads a portal
        # bumps VERSION_KEY in the control table, and `check_version` (each request) drops them.
        self._cache: dict = {}
        self._version: str | None = None

    def check_version(self, version: str | None) -> None:
        """Forget cached users and webhooks when some process changed the portals."""
        if version != self._version:
            self._cache = {}
            self._version = version

    def _cached(self, key: tuple, read):
        """`read()`, kept when it found rows: a miss is not kept, so calls naming ids that do
        not exist (any client may send them) cannot grow the cache without bound."""
        cache = self._cache
        if key in cache:
            return cache[key]
        found = read()
        if found:
            cache[key] = found
        return found

    def is_empty(self) -> bool:
        """True when no portal has been loaded yet."""
        return not self.database.query("SELECT 1 FROM portals LIMIT 1")

    def load(self, portal: dict) -> None:
        """Replace one portal's users, webhooks, apps and tokens with a parsed fixture."""
        self.load_rows(portal_rows(portal))

    def load_rows(self, rows: dict) -> None:
        """Replace one portal with the rows `portal_rows` made (secrets already digests)."""
        name = rows["portals"][0]["name"]
        self._cache = {}
        with self.database.write() as db:
            for table in ("users", "departments", "webhooks", "apps", "tokens", "portals"):
                db.execute(f"DELETE FROM {table} WHERE " + _portal_column(table), [name])  # noqa: S608
            for table in ("portals", "users", "departments", "webhooks", "apps", "tokens"):
                if rows.get(table):
                    db[table].insert_all(rows[table])
            replace_fixture_stubs(db, name, rows.get("stubs") or [])
            _bump_version(db)

    def portal(self, name: str) -> dict | None:
        """One portal's own settings (domain, timezone)."""
        rows = self.database.query("SELECT * FROM portals WHERE name = ?", (name,))
        return rows[0] if rows else None

    def user(self, portal: str, user_id: int) -> dict | None:
        """A user by id, with `active` and `admin` as booleans."""
        found = self._cached(("user", portal, user_id), lambda: [_user(row) for row in (
            self.database.query("SELECT * FROM users WHERE portal = ? AND id = ?",
                                (portal, user_id)))])
        if not found:
            return None
        user = found[0]  # decoded once; the caller gets its own copy
        return {**user, "departments": list(user["departments"]), "extra": dict(user["extra"])}

    def users(self, portal: str) -> list[dict]:
        """Every user of a portal, by id."""
        rows = self.database.query("SELECT * FROM users WHERE portal = ? ORDER BY id", (portal,))
        return [_user(row) for row in rows]

    def departments(self, portal: str) -> list[dict]:
        """The portal's departments (id, name, sort, parent, head), by id."""
        return self.database.query(
            "SELECT id, name, sort, parent, head FROM departments WHERE portal = ? ORDER BY id",
            (portal,))

    def user_by_login(self, portal: str, login: str) -> dict | None:
        """An active user by login (webhook URLs may name the user by login)."""
        rows = self.database.query(
            "SELECT * FROM users WHERE portal = ? AND login = ? AND active = 1", (portal, login)
        )
        return _user(rows[0]) if rows else None

    def webhook(self, portal: str, user_id: int, code: str) -> dict | None:
        """The user's webhook whose code matches, compared in constant time."""
        rows = self._cached(("webhooks", portal, user_id), lambda: [
            (row["code"].encode(), _with_scopes(row)) for row in self.database.query(
                "SELECT * FROM webhooks WHERE portal = ? AND user_id = ?", (portal, user_id))])
        given = code.encode("utf-8", "surrogatepass")
        found = None
        for stored, row in rows:
            if hmac.compare_digest(stored, given):
                found = row
        return {**found, "scopes": list(found["scopes"])} if found else None

    def webhooks(self, portal: str) -> list[dict]:
        """Every webhook of a portal (for the start-up banner and the control API)."""
        rows = self.database.query(
            "SELECT * FROM webhooks WHERE portal = ? ORDER BY id", (portal,)
        )
        return [_with_scopes(row) for row in rows]

    def token(self, portal: str, token: str, kind: str = "access") -> dict | None:
        """An OAuth token row (access or refresh) by its value."""
        digest = token_hash(token)
        rows = self.database.query(
            "SELECT * FROM tokens WHERE access_hash = ? AND portal = ? AND kind = ?",
            (digest, portal, kind),
        )
        if not rows or not hmac.compare_digest(rows[0]["access_hash"], digest):
            return None
        return _with_scopes(rows[0])

    def rotate_refresh_token(self, portal: str, refresh_token: str, client_id: str,
                             now: float) -> dict | None:
        """Spend a refresh token: a new access + refresh pair for the same app, user and scopes.

        The old refresh token is deleted in the same transaction, so it works exactly once (two
        racing refreshes with one token: one wins). None when the token is unknown, expired,
        already used or issued to another application. The old access token is left to expire.
        """
        digest = token_hash(refresh_token)
        with self.database.write() as db:
            rows = list(db.query(
                "SELECT * FROM tokens WHERE access_hash = ? AND portal = ? AND kind = 'refresh'",
                [digest, portal]))
            if not rows or not hmac.compare_digest(rows[0]["access_hash"], digest):
                return None
            row = rows[0]
            if row["client_id"] != client_id or row["expires_at"] <= now:
                return None
            db.execute("DELETE FROM tokens WHERE access_hash = ?", [digest])
            issued = _insert_token_pair(db, portal, row["client_id"], row["user_id"],
                                        row["scopes"], now)
        return {**issued, "client_id": row["client_id"], "user_id": row["user_id"],
                "scopes": json.loads(row["scopes"] or "[]")}

    def client_secret_matches(self, app: dict, client_secret: str) -> bool:
        """True when `client_secret` is the application's (digests compared in constant time)."""
        return hmac.compare_digest(app["client_secret_hash"] or "", token_hash(client_secret))
    def issue_tokens(self, portal: str, client_id: str, user_id: int, now: float, *,
                     refresh: bool = True) -> dict:
        """A fresh access token (and refresh token) for an app's user with the app's scopes: what
        a portal hands an event handler. `{"access_token", "refresh_token"?, "expires_at",
        "scopes"}`."""
        app = self.app(portal, client_id)
        scopes = json.dumps(app["scopes"] if app else [])
        with self.database.write() as db:
            issued = _insert_token_pair(db, portal, client_id, user_id, scopes, now,
                                        refresh=refresh)
        return {**issued, "scopes": json.loads(scopes)}

    def set_app_active(self, portal: str, client_id: str, active: bool) -> None:
        """Install (activate) or uninstall (deactivate) an application."""
        with self.database.write() as db:
            db.execute("UPDATE apps SET active = ? WHERE portal = ? AND client_id = ?",
                       [int(active), portal, client_id])
            _bump_version(db)

    def app(self, portal: str, client_id: str) -> dict | None:
        """An OAuth application by client id."""
        rows = self.database.query(
            "SELECT * FROM apps WHERE portal = ? AND client_id = ?", (portal, client_id)
        )
        return _with_scopes(rows[0]) if rows else None


def portal_rows(portal: dict) -> dict[str, list[dict]]:
    """A parsed fixture as the rows of each table: tokens and client secrets as digests.

    These rows are also what a seeded portal is remembered as (`reset` reloads them), so no
    secret but the webhook codes (shown as ready-to-use URLs) is ever stored in full.
    """
    name = portal["name"]
    apps = portal["apps"]
    return {
        "portals": [{"name": name, "domain": portal["domain"],
                     "timezone": portal.get("timezone")}],
        "users": [_user_row(name, user) for user in portal["users"]],
        "departments": [{**department, "portal": name}
                        for department in portal.get("departments") or []],
        "webhooks": [_webhook_row(name, hook) for hook in portal["webhooks"]],
        "apps": [_app_row(name, app) for app in apps],
        "tokens": [row for app in apps for row in _token_rows(name, app)],
        "stubs": portal.get("stubs") or [],
    }


def new_token() -> str:
    """A fresh token, shaped like a portal's (70 lower-case hex characters)."""
    return secrets.token_hex(35)


def _insert_token_pair(db, portal: str, client_id: str, user_id: int, scopes: str,
                       now: float, *, refresh: bool = True) -> dict:
    """Store a new access token (one hour) and refresh token (180 days); return them."""
    issued = {"access_token": new_token(), "expires_at": now + ACCESS_TOKEN_LIFETIME}
    common = {"portal": portal, "client_id": client_id, "user_id": user_id, "scopes": scopes}
    rows = [{**common, "access_hash": token_hash(issued["access_token"]), "kind": "access",
             "expires_at": issued["expires_at"]}]
    if refresh:
        issued["refresh_token"] = new_token()
        rows.append({**common, "access_hash": token_hash(issued["refresh_token"]),
                     "kind": "refresh", "expires_at": now + REFRESH_TOKEN_LIFETIME})
    db["tokens"].insert_all(rows)
    return issued


def _portal_column(table: str) -> str:
    return "name = ?" if table == "portals" else "portal = ?"


def _user_row(portal: str, user: dict) -> dict:
    row = {**user, "portal": portal, "departments": json.dumps(user["departments"]),
           "extra": json.dumps(user.get("extra") or {})}
    row["active"] = int(user["active"])
    row["admin"] = int(user["admin"])
    row["login"] = user["login"] or f"user{user['id']}"
    return row


def _webhook_row(portal: str, hook: dict) -> dict:
    return {**hook, "portal": portal, "scopes": json.dumps(hook["scopes"])}


def _app_row(portal: str, app: dict) -> dict:
    row = {key: value for key, value in app.items() if key not in ("tokens", "client_secret")}
    scopes = json.dumps(app["scopes"])
    token = app.get("application_token") or default_application_token(portal, app["client_id"])
    return {**row, "portal": portal, "scopes": scopes, "active": int(app["active"]),
            "client_secret_hash": token_hash(app["client_secret"]), "application_token": token}


def default_application_token(portal: str, client_id: str) -> str:
    """An app's application_token when its fixture names none: stable, 32 hex characters."""
    seed = f"b24emu-application-token:{portal}:{client_id}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


def _token_rows(portal: str, app: dict):
    for token in app["tokens"]:
        scopes = json.dumps(token["scopes"] if token["scopes"] is not None else app["scopes"])
        common = {"portal": portal, "client_id": app["client_id"], "user_id": token["user_id"],
                  "scopes": scopes, "expires_at": token["expires_at"].timestamp()}
        yield {**common, "access_hash": token_hash(token["access_token"]), "kind": "access"}
        if token["refresh_token"]:
            yield {**common, "access_hash": token_hash(token["refresh_token"]), "kind": "refresh",
                   "expires_at": FIXTURE_REFRESH_EXPIRES_AT}


def _user(row: dict) -> dict:
    return {**row, "active": bool(row["active"]), "admin": bool(row["admin"]),
            "departments": json.loads(row["departments"] or "[]"),
            "extra": json.loads(row.get("extra") or "{}")}


def _with_scopes(row: dict) -> dict:
    return {**row, "scopes": json.loads(row["scopes"] or "[]")}


def _bump_version(db) -> None:
    """Make every process drop its PortalStore cache (users by id, webhooks; apps and tokens
    are not cached, they are read at each call) at its next request. Any write to users or
    webhooks outside `load_rows` must call this in its transaction; `set_app_active` calls it
    too, which costs the other processes one re-read of those rows."""
    db.execute("INSERT INTO control (key, value) VALUES (?, '1') ON CONFLICT (key)"
               " DO UPDATE SET value = CAST(value AS INTEGER) + 1", [VERSION_KEY])
    note_control_change(db)
