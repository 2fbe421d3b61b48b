"""The schema, as numbered migrations. Never edit a released migration: append a new one."""

from __future__ import annotations

import sqlite_utils


def _v1_portal_and_notifications(db: sqlite_utils.Database) -> None:
    """Portals (users, webhooks, OAuth apps and tokens) and the notifications they exchange."""
    db["portals"].create({"name": "text", "domain": "text", "timezone": "text"}, pk="name")
    db["users"].create(
        {
            "portal": "text", "id": int, "login": "text", "name": "text", "last_name": "text",
            "email": "text", "active": int, "admin": int, "gender": "text", "time_zone": "text",
            "date_register": "text", "departments": "text",
        },
        pk=("portal", "id"),
        not_null={"portal", "id"},
    )
    db["webhooks"].create(
        {"portal": "text", "id": int, "user_id": int, "code": "text", "scopes": "text",
         "title": "text"},
        pk=("portal", "id"),
    )
    db["apps"].create(
        {"portal": "text", "client_id": "text", "client_secret": "text", "name": "text",
         "code": "text", "scopes": "text", "active": int},
        pk=("portal", "client_id"),
    )
    db["tokens"].create(
        {"access_hash": "text", "portal": "text", "client_id": "text", "user_id": int,
         "kind": "text", "scopes": "text", "expires_at": float},
        pk="access_hash",
    )
    # AUTOINCREMENT semantics: an id is never reused, even after deletes (a portal's ids grow).
    db.execute(
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, recipient_id INTEGER,
            sender_id INTEGER, notify_type INTEGER, module TEXT, event TEXT, message TEXT,
            message_out TEXT, notify_tag TEXT, notify_sub_tag TEXT, attach TEXT,
            created_at REAL, is_read INTEGER NOT NULL DEFAULT 0, read_at REAL, method TEXT,
            auth_type TEXT, credential TEXT)"""
    )
    notifications = db["notifications"]
    notifications.create_index(["portal", "recipient_id", "id"])
    notifications.create_index(["portal", "notify_tag"])
    notifications.create_index(["portal", "notify_sub_tag"])


def _v2_rate_buckets(db: sqlite_utils.Database) -> None:
    """The request-rate leaky bucket of each (portal, client IP) (spec Part A 10)."""
    db["rate_buckets"].create(
        {"portal": "text", "client_ip": "text", "level": float, "updated_at": float},
        pk=("portal", "client_ip"),
    )


def _v3_operating_buckets(db: sqlite_utils.Database) -> None:
    """Per-method operating time in one-minute buckets (spec Part A 11, B 5.2)."""
    db["operating_buckets"].create(
        {"portal": "text", "auth_type": "text", "credential": "text", "method": "text",
         "minute": int, "seconds": float, "first_at": float},
        pk=("portal", "auth_type", "credential", "method", "minute"),
    )


def _v4_control_plane(db: sqlite_utils.Database) -> None:
    """What the control API steers and reads back: request journal, faults, clock (issue 5).

    Everything lives in the database so every worker process sees the same state.
    """
    db.execute(
        """CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, request_id TEXT,
            at REAL, http_method TEXT, path TEXT, method TEXT, auth_type TEXT, credential TEXT,
            user_id INTEGER, client_ip TEXT, params TEXT, status INTEGER, error TEXT,
            duration REAL, parent_id INTEGER)"""
    )
    db["journal"].create_index(["portal", "id"])
    db["journal"].create_index(["request_id"])
    db.execute(
        """CREATE TABLE faults (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, method TEXT NOT NULL,
            error TEXT, description TEXT, status INTEGER, latency REAL NOT NULL DEFAULT 0,
            remaining INTEGER, probability REAL NOT NULL DEFAULT 1, hits INTEGER NOT NULL
            DEFAULT 0, created_at REAL)"""
    )
    db["control"].create({"key": "text", "value": "text"}, pk="key")
    db.execute("ALTER TABLE notifications ADD COLUMN request_id TEXT")


def _v5_plain_tag_indexes(db: sqlite_utils.Database) -> None:
    """Filters by plain tag / sub-tag (the value after `MP|xxxxx|`) use an index. The expressions
    are exactly the ones `notifications._plain_tag_condition` compares."""
    db.execute("CREATE INDEX idx_notifications_plain_tag ON notifications"
               " (portal, substr(notify_tag, 10), recipient_id, id)")
    db.execute("CREATE INDEX idx_notifications_plain_sub_tag ON notifications"
               " (portal, substr(notify_sub_tag, 10), recipient_id, id)")


def _v6_user_fields_and_departments(db: sqlite_utils.Database) -> None:
    """Users carry any documented or UF_* field (`extra`, JSON); the company structure."""
    db.execute("ALTER TABLE users ADD COLUMN extra TEXT")
    db["departments"].create(
        {"portal": "text", "id": int, "name": "text", "sort": int, "parent": int, "head": int},
        pk=("portal", "id"),
        not_null={"portal", "id"},
    )


def _v7_stubs(db: sqlite_utils.Database) -> None:
    """Stubs: answers for methods the emulator does not emulate (issue 14), per portal; the
    journal notes which stub answered a call."""
    db.execute(
        """CREATE TABLE stubs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, method TEXT NOT NULL,
            override INTEGER NOT NULL DEFAULT 0, spec TEXT NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0, source TEXT, created_at REAL)"""
    )
    db["stubs"].create_index(["portal", "method", "override"])
    db.execute("ALTER TABLE journal ADD COLUMN stub_id INTEGER")


def _v8_events(db: sqlite_utils.Database) -> None:
    """Events (issue 16): handlers bound with event.bind, the delivery queue of online events,
    the offline event queue, and each app's application_token."""
    db.execute("ALTER TABLE apps ADD COLUMN application_token TEXT")
    db.execute(
        """CREATE TABLE event_handlers (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, client_id TEXT NOT NULL,
            event_name TEXT NOT NULL, handler TEXT NOT NULL, user_id INTEGER NOT NULL DEFAULT 0,
            connector_id TEXT NOT NULL DEFAULT '', options TEXT, created_at REAL,
            notified_at REAL,
            UNIQUE (portal, client_id, event_name, handler, connector_id, user_id))""")
    db.execute("CREATE INDEX idx_event_handlers_event ON event_handlers (portal, event_name)")
    db.execute(
        """CREATE TABLE event_deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, handler_id INTEGER,
            client_id TEXT, event_name TEXT, url TEXT, data TEXT, user_id INTEGER,
            refresh_token INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, created_at REAL,
            claimed_by TEXT, claimed_at REAL, sent_at REAL, duration REAL, http_status INTEGER,
            response TEXT, error TEXT, token_hash TEXT, base_url TEXT)""")
    db.execute("CREATE INDEX idx_event_deliveries_status ON event_deliveries (status, id)")
    db.execute("CREATE INDEX idx_event_deliveries_portal ON event_deliveries (portal, id)")
    db.execute(
        """CREATE TABLE event_offline (
            id INTEGER PRIMARY KEY AUTOINCREMENT, portal TEXT NOT NULL, client_id TEXT NOT NULL,
            connector_id TEXT NOT NULL DEFAULT '', message_id TEXT NOT NULL,
            event_name TEXT NOT NULL, event_data TEXT, event_additional TEXT,
            process_id TEXT NOT NULL DEFAULT '', error INTEGER NOT NULL DEFAULT 0,
            timestamp_x REAL,
            UNIQUE (portal, client_id, connector_id, message_id, process_id))""")


def _v9_secrets_as_digests(db: sqlite_utils.Database) -> None:
    """Client secrets and remembered fixtures keep no secret in full (issue 13).

    `apps.client_secret` becomes `client_secret_hash` (SHA-256); every remembered fixture
    (`control` key `fixture:<portal>`) becomes the rows it loads, tokens as digests. The old
    values are overwritten on disk (`secure_delete`), not left in free pages.
    """
    import json

    from b24emu.store.fixtures import FixtureError, parse_fixture
    from b24emu.store.portals import portal_rows, token_hash

    db.execute("PRAGMA secure_delete = ON")
    db.execute("ALTER TABLE apps RENAME COLUMN client_secret TO client_secret_hash")
    for portal, client_id, secret in db.execute(
            "SELECT portal, client_id, client_secret_hash FROM apps").fetchall():
        db.execute("UPDATE apps SET client_secret_hash = ? WHERE portal = ? AND client_id = ?",
                   [token_hash(secret or ""), portal, client_id])
    for key, value in db.execute(
            "SELECT key, value FROM control WHERE key LIKE 'fixture:%'").fetchall():
        try:
            rows = portal_rows(parse_fixture(json.loads(value)))
        except (FixtureError, ValueError):
            db.execute("DELETE FROM control WHERE key = ?", [key])
            continue
        db.execute("UPDATE control SET value = ? WHERE key = ?", [json.dumps({"rows": rows}), key])


def _v10_application_tokens(db: sqlite_utils.Database) -> None:
    """v8 added `apps.application_token` empty: apps stored before it get the token a fixture
    naming none gets (`portals.default_application_token`), the one a reseed would give them,
    so event deliveries carry a token and it does not change on `reset`."""
    import hashlib

    for portal, client_id in db.execute(
            "SELECT portal, client_id FROM apps WHERE application_token IS NULL"
            " OR application_token = ''").fetchall():
        # The rule of default_application_token as released with v10 (not imported: a later
        # change there must not change what this migration does).
        seed = f"b24emu-application-token:{portal}:{client_id}".encode()
        db.execute("UPDATE apps SET application_token = ? WHERE portal = ? AND client_id = ?",
                   [hashlib.sha256(seed).hexdigest()[:32], portal, client_id])


def _v11_one_index_per_tag(db: sqlite_utils.Database) -> None:
    """Each tag column keeps one index, the plain-tag one of v5, and it holds only the rows with
    a tag: queries on the stored tag compare its plain part too, and every tag query says the
    tag is not empty (`notifications._STORED_TAG_CONDITION`, `_plain_tag_condition`), so they
    find their rows through it. An add without a SUB_TAG (most of them) and one with a TAG
    write three or four index entries fewer than before, and a TAG replacement deletes as many
    fewer."""
    for name in ("portal_notify_tag", "portal_notify_sub_tag", "plain_tag", "plain_sub_tag"):
        db.execute(f"DROP INDEX IF EXISTS idx_notifications_{name}")
    db.execute("CREATE INDEX idx_notifications_plain_tag ON notifications"
               " (portal, substr(notify_tag, 10), recipient_id, id) WHERE notify_tag != ''")
    db.execute("CREATE INDEX idx_notifications_plain_sub_tag ON notifications"
               " (portal, substr(notify_sub_tag, 10), recipient_id, id)"
               " WHERE notify_sub_tag != ''")


MIGRATIONS = [_v1_portal_and_notifications, _v2_rate_buckets, _v3_operating_buckets,
              _v4_control_plane, _v5_plain_tag_indexes, _v6_user_fields_and_departments,
              _v7_stubs, _v8_events, _v9_secrets_as_digests, _v10_application_tokens,
              _v11_one_index_per_tag]
