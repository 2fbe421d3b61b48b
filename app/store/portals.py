"""Portals: their users, incoming webhooks, OAuth applications and tokens.

Tokens are stored and looked up by their SHA-256, never by the secret itself, and the final
comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from app.store.db import Database

DEFAULT_PORTAL = "default"


def token_hash(token: str) -> str:
    """The key a token is stored under."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class PortalStore:
    """Read and seed the portal description (what a fixture file holds)."""

    def __init__(self, database: Database):
        self.database = database

    def is_empty(self) -> bool:
        """True when no portal has been loaded yet."""
        return not self.database.query("SELECT 1 FROM portals LIMIT 1")

    def load(self, portal: dict) -> None:
        """Replace one portal's users, webhooks, apps and tokens with a parsed fixture."""
        name = portal["name"]
        with self.database.write() as db:
            for table in ("users", "webhooks", "apps", "tokens", "portals"):
                db.execute(f"DELETE FROM {table} WHERE " + _portal_column(table), [name])  # noqa: S608
            db["portals"].insert(
                {"name": name, "domain": portal["domain"], "timezone": portal.get("timezone")}
            )
            db["users"].insert_all(_user_row(name, user) for user in portal["users"])
            db["webhooks"].insert_all(_webhook_row(name, hook) for hook in portal["webhooks"])
            for app in portal["apps"]:
                db["apps"].insert(_app_row(name, app))
                db["tokens"].insert_all(_token_rows(name, app))

    def portal(self, name: str) -> dict | None:
        """One portal's own settings (domain, timezone)."""
        rows = self.database.query("SELECT * FROM portals WHERE name = ?", (name,))
        return rows[0] if rows else None

    def user(self, portal: str, user_id: int) -> dict | None:
        """A user by id, with `active` and `admin` as booleans."""
        rows = self.database.query(
            "SELECT * FROM users WHERE portal = ? AND id = ?", (portal, user_id)
        )
        return _user(rows[0]) if rows else None

    def users(self, portal: str) -> list[dict]:
        """Every user of a portal, by id."""
        rows = self.database.query("SELECT * FROM users WHERE portal = ? ORDER BY id", (portal,))
        return [_user(row) for row in rows]

    def user_by_login(self, portal: str, login: str) -> dict | None:
        """An active user by login (webhook URLs may name the user by login)."""
        rows = self.database.query(
            "SELECT * FROM users WHERE portal = ? AND login = ? AND active = 1", (portal, login)
        )
        return _user(rows[0]) if rows else None

    def webhook(self, portal: str, user_id: int, code: str) -> dict | None:
        """The user's webhook whose code matches, compared in constant time."""
        rows = self.database.query(
            "SELECT * FROM webhooks WHERE portal = ? AND user_id = ?", (portal, user_id)
        )
        found = None
        for row in rows:
            if hmac.compare_digest(row["code"].encode(), code.encode("utf-8", "surrogatepass")):
                found = row
        return _with_scopes(found) if found else None

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

    def app(self, portal: str, client_id: str) -> dict | None:
        """An OAuth application by client id."""
        rows = self.database.query(
            "SELECT * FROM apps WHERE portal = ? AND client_id = ?", (portal, client_id)
        )
        return _with_scopes(rows[0]) if rows else None


def _portal_column(table: str) -> str:
    return "name = ?" if table == "portals" else "portal = ?"


def _user_row(portal: str, user: dict) -> dict:
    row = {**user, "portal": portal, "departments": json.dumps(user["departments"])}
    row["active"] = int(user["active"])
    row["admin"] = int(user["admin"])
    row["login"] = user["login"] or f"user{user['id']}"
    return row


def _webhook_row(portal: str, hook: dict) -> dict:
    return {**hook, "portal": portal, "scopes": json.dumps(hook["scopes"])}


def _app_row(portal: str, app: dict) -> dict:
    row = {key: value for key, value in app.items() if key != "tokens"}
    scopes = json.dumps(app["scopes"])
    return {**row, "portal": portal, "scopes": scopes, "active": int(app["active"])}


def _token_rows(portal: str, app: dict):
    for token in app["tokens"]:
        scopes = json.dumps(token["scopes"] if token["scopes"] is not None else app["scopes"])
        common = {"portal": portal, "client_id": app["client_id"], "user_id": token["user_id"],
                  "scopes": scopes, "expires_at": token["expires_at"].timestamp()}
        yield {**common, "access_hash": token_hash(token["access_token"]), "kind": "access"}
        if token["refresh_token"]:
            yield {**common, "access_hash": token_hash(token["refresh_token"]), "kind": "refresh"}


def _user(row: dict) -> dict:
    return {**row, "active": bool(row["active"]), "admin": bool(row["admin"]),
            "departments": json.loads(row["departments"] or "[]")}


def _with_scopes(row: dict) -> dict:
    return {**row, "scopes": json.loads(row["scopes"] or "[]")}
