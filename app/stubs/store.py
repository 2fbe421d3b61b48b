"""Stubs in SQLite, per portal: what the control API lists and what a call is matched against.

A row keeps the normalized stub (`b24emu.stubs.schema.normalize`) as JSON, plus `hits` (how many
calls it answered: the position in its sequence) and where it came from (`fixture` or `api`).
Loading a portal's fixture replaces all of its stubs with the fixture's.
"""

from __future__ import annotations

import json

from b24emu.store.db import Database, note_control_change

MAX_STUBS = 10000  # per portal
FIXTURE, API = "fixture", "api"
STORED_KEY = "stubs_stored"  # control key: whether any portal has a stub (read per request)


class TooManyStubs(ValueError):
    """A portal already holds MAX_STUBS stubs."""


def insert_stubs(db, portal: str, stubs: list[dict], now: float, source: str) -> list[int]:
    """Insert normalized stubs inside an open write transaction; their ids, in order."""
    count = db.execute("SELECT count(*) FROM stubs WHERE portal = ?", [portal]).fetchone()[0]
    if count + len(stubs) > MAX_STUBS:
        raise TooManyStubs(f"a portal holds at most {MAX_STUBS} stubs ({count} stored)")
    ids = []
    for stub in stubs:
        cursor = db.execute(
            "INSERT INTO stubs (portal, method, override, spec, hits, source, created_at)"
            " VALUES (?, ?, ?, ?, 0, ?, ?)",
            [portal, stub["method"], int(stub["override"]), json.dumps(stub), source, now])
        ids.append(cursor.lastrowid)
    mark_stored(db)
    return ids


def mark_stored(db) -> None:
    """Note in `control` whether any stub is stored, inside the write that changed the table:
    a REST call skips the stub lookup while there is none (`ControlStore.snapshot`)."""
    db.execute("INSERT OR REPLACE INTO control (key, value) VALUES (?, ?)",
               [STORED_KEY, str(db.execute("SELECT EXISTS (SELECT 1 FROM stubs)").fetchone()[0])])
    note_control_change(db)


def replace_fixture_stubs(db, portal: str, stubs: list[dict], now: float = 0.0) -> None:
    """A portal (re)loaded from its fixture: its stubs become the fixture's."""
    db.execute("DELETE FROM stubs WHERE portal = ?", [portal])
    insert_stubs(db, portal, stubs, now, FIXTURE)


class StubStore:
    """Add, list, delete and match stubs; count the calls each answered."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, portal: str, stubs: list[dict], now: float) -> list[dict]:
        """Store normalized stubs (all or none); the stored stubs."""
        with self.database.write() as db:
            ids = insert_stubs(db, portal, stubs, now, API)
        return [self.get(portal, stub_id) for stub_id in ids]

    def get(self, portal: str, stub_id: int) -> dict | None:
        """One stub, or None."""
        rows = self.database.query("SELECT * FROM stubs WHERE portal = ? AND id = ?",
                                   (portal, stub_id))
        return _stub(rows[0]) if rows else None

    def all(self, portal: str) -> list[dict]:
        """A portal's stubs, oldest first."""
        rows = self.database.query("SELECT * FROM stubs WHERE portal = ? ORDER BY id", (portal,))
        return [_stub(row) for row in rows]

    def delete(self, portal: str, stub_id: int) -> bool:
        """Remove one stub; False when there is none with that id."""
        with self.database.write() as db:
            cursor = db.execute("DELETE FROM stubs WHERE portal = ? AND id = ?",
                                [portal, stub_id])
            mark_stored(db)
        return cursor.rowcount > 0

    def clear(self, portal: str) -> int:
        """Remove every stub of a portal; how many there were."""
        with self.database.write() as db:
            removed = db.execute("DELETE FROM stubs WHERE portal = ?", [portal]).rowcount
            mark_stored(db)
        return removed

    def candidates(self, portal: str, method: str, *, overrides_only: bool) -> list[dict]:
        """The stubs of one method (only `override` ones for a method the emulator has)."""
        sql = "SELECT * FROM stubs WHERE portal = ? AND method = ?"
        if overrides_only:
            sql += " AND override = 1"
        return [_stub(row) for row in self.database.query(sql, (portal, method.lower()))]

    def methods(self, portal: str) -> dict[str, str]:
        """Stubbed method -> the scope its newest stub needs."""
        rows = self.database.query(
            "SELECT method, spec FROM stubs WHERE id IN (SELECT max(id) FROM stubs"
            " WHERE portal = ? GROUP BY method)", (portal,))
        return {row["method"]: json.loads(row["spec"])["scope"] for row in rows}

    def take(self, stub_id: int) -> int:
        """Count one more answered call; the count including this one (0 if the stub is gone)."""
        with self.database.write() as db:
            row = db.execute("UPDATE stubs SET hits = hits + 1 WHERE id = ? RETURNING hits",
                             [stub_id]).fetchone()
        return row[0] if row else 0


def _stub(row: dict) -> dict:
    return {"id": row["id"], **json.loads(row["spec"]), "hits": row["hits"],
            "source": row["source"], "created_at": row["created_at"]}
