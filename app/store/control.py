"""What the control API steers and reads back: the clock, injected faults and the request journal.

All of it lives in SQLite, so every worker process of one emulator sees the same state. A REST
request reads the small `control` table once (`snapshot`) to learn the clock and whether any fault
is armed; faults and the journal are only touched when they matter.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from b24emu.store.db import Database, note_control_change
from b24emu.stubs.store import STORED_KEY as STUBS_KEY
from b24emu.stubs.store import mark_stored as mark_stubs_stored

CLOCK_KEY = "clock"
FAULTS_KEY = "faults_armed"
PORTALS_VERSION_KEY = "portals_version"  # see PortalStore.check_version
ANY_METHOD = "*"
PARAMS_LIMIT = 65536  # characters of decoded parameters kept per journal entry


@dataclass(frozen=True)
class ClockState:
    """The emulator clock relative to the real one: frozen at an instant, or shifted."""

    frozen_at: float | None = None
    offset: float = 0.0

    def now(self, base: float) -> float:
        """The emulator's time for a real time `base`."""
        return self.frozen_at if self.frozen_at is not None else base + self.offset


@dataclass(frozen=True)
class Snapshot:
    """The control state one request needs."""

    clock: ClockState
    faults_armed: bool
    portals_version: str | None = None
    stubs_stored: bool = True  # False only when the control table says no stub is stored


@dataclass(frozen=True)
class JournalFilter:
    """Which journal entries to list (all fields optional)."""

    method: str | None = None
    status: int | None = None
    error: str | None = None
    request_id: str | None = None
    since: float | None = None
    user_id: int | None = None
    min_id: int | None = None


class ControlStore:
    """Clock state, faults and journal of every portal of one emulator."""

    def __init__(self, database: Database, journal_max: int = 10000):
        self.database = database
        self.journal_max = journal_max
        self._snapshot: tuple[int, Snapshot] | None = None  # (control version, what it read)

    # --- the state a request reads first ---------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Clock, armed-faults flag, stubs flag and portals version: read in one query, and
        read again only after some process changed them (`Database.control_version`)."""
        version = self.database.control_version()  # before the read: a change during it
        kept = self._snapshot                      # makes the next call read again
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        values = dict(self.database.db.conn.execute(
            "SELECT key, value FROM control WHERE key IN (?, ?, ?, ?)",
            (CLOCK_KEY, FAULTS_KEY, PORTALS_VERSION_KEY, STUBS_KEY)).fetchall())
        snapshot = Snapshot(_clock_state(values.get(CLOCK_KEY)),
                            values.get(FAULTS_KEY, "0") != "0", values.get(PORTALS_VERSION_KEY),
                            values.get(STUBS_KEY, "1") != "0")
        if version is not None:
            self._snapshot = (version, snapshot)
        return snapshot

    # --- clock --------------------------------------------------------------------------------

    def clock_state(self) -> ClockState:
        """The stored clock state (real time when nothing was set)."""
        rows = self.database.query("SELECT value FROM control WHERE key = ?", (CLOCK_KEY,))
        return _clock_state(rows[0]["value"] if rows else None)

    def set_clock(self, state: ClockState) -> None:
        """Store a new clock state for every worker."""
        value = json.dumps({"frozen_at": state.frozen_at, "offset": state.offset})
        with self.database.write() as db:
            db.execute("INSERT OR REPLACE INTO control (key, value) VALUES (?, ?)",
                       [CLOCK_KEY, value])
            note_control_change(db)

    # --- faults -------------------------------------------------------------------------------

    def add_fault(self, portal: str, *, method: str, error: str | None, description: str,
                  status: int | None, latency: float, times: int | None, probability: float,
                  now: float) -> dict:
        """Arm a fault: for `method` (or "*"), answer an error and/or add latency."""
        row = {"portal": portal, "method": method.lower(), "error": error,
               "description": description, "status": status, "latency": latency,
               "remaining": times, "probability": probability, "hits": 0, "created_at": now}
        with self.database.write() as db:
            fault_id = db["faults"].insert(row).last_pk
            self._mark_armed(db)
        return {**row, "id": fault_id}

    def faults(self, portal: str) -> list[dict]:
        """A portal's armed faults, oldest first."""
        return self.database.query(
            "SELECT * FROM faults WHERE portal = ? ORDER BY id", (portal,))

    def delete_fault(self, portal: str, fault_id: int) -> bool:
        """Disarm one fault; False when there was none with that id."""
        with self.database.write() as db:
            cursor = db.execute("DELETE FROM faults WHERE portal = ? AND id = ?",
                                [portal, fault_id])
            self._mark_armed(db)
        return cursor.rowcount > 0

    def clear_faults(self, portal: str) -> int:
        """Disarm every fault of a portal; how many there were."""
        with self.database.write() as db:
            cursor = db.execute("DELETE FROM faults WHERE portal = ?", [portal])
            self._mark_armed(db)
        return cursor.rowcount

    def take_fault(self, portal: str, method: str, rng=random) -> dict | None:
        """The fault that fires for this call, if any; a fault with `times` left is used up.

        The first armed fault for the method (or "*") whose probability draw succeeds fires. A
        fault with no calls left is removed in the same transaction.
        """
        with self.database.write() as db:
            rows = list(db.query(
                "SELECT * FROM faults WHERE portal = ? AND method IN (?, ?) ORDER BY id",
                [portal, method.lower(), ANY_METHOD]))
            for row in rows:
                if row["probability"] < 1 and rng.random() >= row["probability"]:
                    continue
                remaining = row["remaining"]
                if remaining is not None and remaining <= 1:
                    db.execute("DELETE FROM faults WHERE id = ?", [row["id"]])
                    self._mark_armed(db)
                else:
                    db.execute(
                        "UPDATE faults SET hits = hits + 1, remaining = CASE WHEN remaining IS NULL"
                        " THEN NULL ELSE remaining - 1 END WHERE id = ?", [row["id"]])
                return {**row, "hits": row["hits"] + 1}
        return None

    def _mark_armed(self, db) -> None:
        armed = db.execute("SELECT count(*) FROM faults").fetchone()[0]
        db.execute("INSERT OR REPLACE INTO control (key, value) VALUES (?, ?)",
                   [FAULTS_KEY, str(armed)])
        note_control_change(db)

    # --- journal ------------------------------------------------------------------------------

    def record(self, entry: dict, params_json: str | None = None) -> int:
        """Append one REST call to the journal; the oldest entries beyond the cap are dropped.

        `params_json`: the entry's parameters already rendered by `capped_json`. Inside an open
        transaction (a request's unit of work) the row is written as part of it.
        """
        if self.journal_max <= 0:
            return 0
        row = dict(entry)
        row["params"] = (params_json if params_json is not None
                         else capped_json(row.get("params"), PARAMS_LIMIT))
        columns = [name for name in _JOURNAL_FIELDS if name in row]
        with self.database.write(savepoint=False) as db:
            entry_id = db.execute(
                f"INSERT INTO journal ({', '.join(columns)})"  # noqa: S608 (fixed column names)
                f" VALUES ({', '.join('?' for _ in columns)})",
                [row[name] for name in columns]).lastrowid
            # Trimming every 64th entry keeps the cost flat: at most journal_max + 63 remain.
            if entry_id % 64 == 0 or self.journal_max < 64:
                portals = [r[0] for r in db.execute("SELECT DISTINCT portal FROM journal")]
                for name in portals:
                    db.execute(
                        "DELETE FROM journal WHERE portal = ? AND id <= (SELECT id FROM journal"
                        " WHERE portal = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        [name, name, self.journal_max])
        return entry_id

    def journal(self, portal: str, flt: JournalFilter = JournalFilter(), *, limit: int = 50,
                offset: int = 0) -> list[dict]:
        """Journal entries, newest first, parameters decoded."""
        where, args = _journal_where(portal, flt)
        rows = self.database.query(
            f"SELECT * FROM journal WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
            (*args, limit, offset))
        return [_journal_entry(row) for row in rows]

    def journal_count(self, portal: str, flt: JournalFilter = JournalFilter()) -> int:
        """How many journal entries match."""
        where, args = _journal_where(portal, flt)
        rows = self.database.query(
            f"SELECT count(*) AS n FROM journal WHERE {where}", tuple(args))  # noqa: S608
        return rows[0]["n"]

    def journal_entry(self, portal: str, entry_id: int) -> dict | None:
        """One journal entry, or None."""
        rows = self.database.query("SELECT * FROM journal WHERE portal = ? AND id = ?",
                                   (portal, entry_id))
        return _journal_entry(rows[0]) if rows else None

    def clear_journal(self, portal: str) -> int:
        """Forget a portal's journal; how many entries there were."""
        with self.database.write() as db:
            return db.execute("DELETE FROM journal WHERE portal = ?", [portal]).rowcount

    # --- reset --------------------------------------------------------------------------------

    def reset(self, portal: str, *, everything: bool) -> dict:
        """Delete a portal's notifications and journal; with `everything`, also its faults and
        rate/operating limit state. Returns how many rows each table lost."""
        tables = ["notifications", "journal", "event_deliveries", "event_offline"]
        if everything:
            tables += ["faults", "rate_buckets", "operating_buckets", "stubs", "event_handlers"]
        from b24emu.events.store import delete_deliveries

        removed = {}
        with self.database.write() as db:
            for table in tables:
                if table == "event_deliveries":  # with the tokens issued for them
                    removed[table] = delete_deliveries(db, "portal = ?", [portal])
                    continue
                removed[table] = db.execute(
                    f"DELETE FROM {table} WHERE portal = ?", [portal]).rowcount  # noqa: S608
            self._mark_armed(db)
            mark_stubs_stored(db)
        return removed


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def capped_json(value, limit: int) -> str:
    """`value` as JSON, or `{"_truncated": <its first `limit` characters>}` when longer.

    The encoder yields the text piece by piece and stops once past the limit, so a huge input
    costs what the limit costs, not what the whole rendering would.
    """
    if _rendering_fits(value, limit):
        return _ENCODER.encode(value)  # the C encoder, for the usual few parameters
    pieces, size = [], 0
    for piece in _pieces(value, limit + 1):
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            return json.dumps({"_truncated": "".join(pieces)[:limit]})
    return "".join(pieces)


def _pieces(value, cut: int):
    """json.dumps(value, ensure_ascii=False, default=str) piece by piece, every string cut to
    `cut` characters first (which leaves the first `cut - 1` characters of the whole the same)."""
    if isinstance(value, str):
        yield _ENCODER.encode(value[:cut])
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            key = key if isinstance(key, str) else _ENCODER.encode(key).strip('"')
            yield (", " if index else "") + _ENCODER.encode(key[:cut]) + ": "
            yield from _pieces(item, cut)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _pieces(item, cut)
        yield "]"
    elif value is None or isinstance(value, (bool, int, float)):
        yield _ENCODER.encode(value)
    else:
        yield _ENCODER.encode(str(value)[:cut])


def _rendering_fits(value, limit: int) -> bool:
    """True when `value`'s JSON is surely at most `limit` characters (an upper bound, found
    without encoding; it gives up as soon as the bound passes the limit)."""
    stack, size = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += 2 + 6 * len(item) if not item.isascii() or not item.isprintable() \
                else 2 + len(item) + item.count('"') + item.count("\\")
        elif isinstance(item, dict):
            size += 2 + 4 * len(item)
            if size > limit:
                return False
            for key, child in item.items():
                size += len(key) * 6 + 2 if isinstance(key, str) else 24
                stack.append(child)
        elif isinstance(item, (list, tuple)):
            size += 2 + 2 * len(item)
            if size > limit:
                return False
            stack.extend(item)
        else:
            size += 26  # numbers, booleans, null and str() of anything else stay short
            if not isinstance(item, (int, float, bool, type(None))):
                return False
        if size > limit:
            return False
    return True


def _clock_state(value: str | None) -> ClockState:
    if not value:
        return ClockState()
    data = json.loads(value)
    return ClockState(data.get("frozen_at"), float(data.get("offset") or 0.0))


_JOURNAL_FIELDS = ("portal", "request_id", "at", "http_method", "path", "method", "auth_type",
                   "credential", "user_id", "client_ip", "params", "status", "error", "duration",
                   "parent_id", "stub_id")
_JOURNAL_COLUMNS = {"method": "method = ?", "status": "status = ?", "error": "error = ?",
                    "request_id": "request_id = ?", "since": "at >= ?", "user_id": "user_id = ?",
                    "min_id": "id >= ?"}


def _journal_where(portal: str, flt: JournalFilter) -> tuple[str, list]:
    clauses, args = ["portal = ?"], [portal]
    for name, clause in _JOURNAL_COLUMNS.items():
        value = getattr(flt, name)
        if value is not None:
            clauses.append(clause)
            args.append(value.lower() if name == "method" else value)
    return " AND ".join(clauses), args


def _journal_entry(row: dict) -> dict:
    return {**row, "params": json.loads(row["params"]) if row["params"] else None}
