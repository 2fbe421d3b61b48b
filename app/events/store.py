"""The events' tables: bound handlers, the delivery queue, the offline queue (schema v8).

Every write is one `Database.write()` transaction, so several worker processes share the queue:
a delivery is claimed by one UPDATE … RETURNING under the write lock, never twice.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from b24emu.store.db import Database

# Delivery states: queued → sending → delivered | failed; dropped when the queue was full.
QUEUED, SENDING, DELIVERED, FAILED, DROPPED = "queued", "sending", "delivered", "failed", "dropped"
MAX_QUEUED = 10_000  # deliveries waiting in the whole database; more are recorded as dropped
HISTORY_KEPT = 1_000  # finished deliveries kept per portal (older ones and their tokens go)
TRIM_EVERY = 32  # a portal's history is trimmed after every this many of its deliveries end
RESPONSE_LIMIT = 1_000  # characters of a handler's answer kept
OFFLINE_PAGE = 50  # event.offline.get default limit and event.offline.list page size


class BindError(Exception):
    """The handler is already bound (the portal's "Handler already binded")."""


@dataclass(frozen=True)
class Handler:
    """One row of `event_handlers`."""

    id: int
    portal: str
    client_id: str
    event_name: str
    handler: str
    user_id: int
    connector_id: str
    options: dict
    notified_at: float | None

    @property
    def offline(self) -> bool:
        """An offline binding has no handler URL."""
        return self.handler == ""


def _handler(row: dict) -> Handler:
    return Handler(row["id"], row["portal"], row["client_id"], row["event_name"], row["handler"],
                   row["user_id"], row["connector_id"], json.loads(row["options"] or "{}"),
                   row["notified_at"])


def message_id(event_name: str, data) -> str:
    """The offline record's MESSAGE_ID: md5 of the event name and its data, as the portal's."""
    text = event_name + "|" + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class EventStore:
    """Reads and writes of the event tables."""

    def __init__(self, database: Database):
        self.database = database
        # Per portal: deliveries that ended (finished or dropped) in this process since its
        # history was last trimmed. Counted per portal, so every portal is trimmed however the
        # ids are shared out; per process, so with N processes a portal keeps at most about
        # HISTORY_KEPT + N * TRIM_EVERY finished deliveries.
        self._ended_since_trim: dict[str, int] = {}

    # --- handlers (event.bind, event.unbind, event.get) ---------------------------------------

    def bind(self, portal: str, client_id: str, event_name: str, handler: str, user_id: int,
             connector_id: str, options: dict, now: float) -> int:
        """Add a handler; BindError when the same one exists."""
        with self.database.write() as db:
            exists = db.execute(
                "SELECT 1 FROM event_handlers WHERE portal = ? AND client_id = ? AND"
                " event_name = ? AND handler = ? AND connector_id = ? AND user_id = ?",
                [portal, client_id, event_name, handler, connector_id, user_id]).fetchone()
            if exists:
                raise BindError("Handler already binded")
            return db.execute(
                "INSERT INTO event_handlers (portal, client_id, event_name, handler, user_id,"
                " connector_id, options, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [portal, client_id, event_name, handler, user_id, connector_id,
                 json.dumps(options), now]).lastrowid

    def unbind(self, portal: str, client_id: str, event_name: str, handler: str, *,
               connector_id: str | None = None, user_id: int | None = None) -> int:
        """Delete matching handlers; how many there were."""
        sql = ("DELETE FROM event_handlers WHERE portal = ? AND client_id = ? AND event_name = ?"
               " AND handler = ?")
        args: list = [portal, client_id, event_name, handler]
        if connector_id is not None:
            sql += " AND connector_id = ?"
            args.append(connector_id)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        with self.database.write() as db:
            return db.execute(sql, args).rowcount

    def handlers(self, portal: str, *, client_id: str | None = None,
                 event_name: str | None = None, user_id: int | None = None) -> list[Handler]:
        """Bound handlers, oldest first, filtered."""
        sql, args = "SELECT * FROM event_handlers WHERE portal = ?", [portal]
        for column, value in (("client_id", client_id), ("event_name", event_name),
                              ("user_id", user_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        return [_handler(row) for row in self.database.query(sql + " ORDER BY id", tuple(args))]

    def take_notification_slot(self, handler_id: int, now: float, min_timeout: int) -> bool:
        """onOfflineEvent throttling: True (and the time noted) when the handler may be notified
        again, i.e. `min_timeout` seconds after its last notification."""
        with self.database.write() as db:
            row = db.execute("SELECT notified_at FROM event_handlers WHERE id = ?",
                             [handler_id]).fetchone()
            if row is None:
                return False
            if row[0] is not None and min_timeout > 0 and now < row[0] + min_timeout:
                return False
            db.execute("UPDATE event_handlers SET notified_at = ? WHERE id = ?", [now, handler_id])
            return True

    # --- the delivery queue -------------------------------------------------------------------

    def enqueue(self, handler: Handler, data, user_id: int, now: float, *,
                refresh_token: bool, base_url: str) -> tuple[int, str]:
        """Queue one delivery; (id, status). A full queue records it as dropped, without its
        data (it is never sent). Dropped rows count as history: they are trimmed here too."""
        with self.database.write() as db:
            waiting = db.execute("SELECT count(*) FROM event_deliveries WHERE status = ?",
                                 [QUEUED]).fetchone()[0]
            status = QUEUED if waiting < MAX_QUEUED else DROPPED
            delivery_id = db.execute(
                "INSERT INTO event_deliveries (portal, handler_id, client_id, event_name, url,"
                " data, user_id, refresh_token, status, created_at, error, base_url)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [handler.portal, handler.id, handler.client_id, handler.event_name,
                 handler.handler, json.dumps(data) if status == QUEUED else None, user_id,
                 int(refresh_token), status, now,
                 None if status == QUEUED else f"queue full ({MAX_QUEUED} waiting)",
                 base_url]).lastrowid
            if status == DROPPED:
                self._ended(db, handler.portal)
        return delivery_id, status

    def has_queued(self) -> bool:
        """Whether any delivery waits (any portal)."""
        return bool(self.database.query(
            "SELECT 1 FROM event_deliveries WHERE status = ? LIMIT 1", (QUEUED,)))

    def claim(self, worker: str, wall_now: float) -> dict | None:
        """Take the oldest queued delivery for this worker (atomically across processes)."""
        with self.database.write() as db:
            row = db.execute(
                "UPDATE event_deliveries SET status = ?, claimed_by = ?, claimed_at = ?"
                " WHERE id = (SELECT id FROM event_deliveries WHERE status = ? ORDER BY id"
                " LIMIT 1) RETURNING *", [SENDING, worker, wall_now, QUEUED]).fetchone()
            if row is None:
                return None
            columns = [column[0] for column in db.conn.execute(
                "SELECT * FROM event_deliveries LIMIT 0").description]
        delivery = dict(zip(columns, row, strict=True))
        delivery["data"] = json.loads(delivery["data"])
        return delivery

    def finish(self, delivery_id: int, *, status: str, sent_at: float, duration: float,
               http_status: int | None, response: str | None, error: str | None,
               token_hash: str | None) -> bool:
        """Record how a delivery ended, and trim the portal's history. `token_hash`: the
        digests of the tokens issued for it (access, then refresh), space-separated. False when
        the delivery is gone (a reset while it was sent: its tokens are deleted then) or has
        ended already (its outcome stays as it was recorded)."""
        with self.database.write() as db:
            row = db.execute(
                "UPDATE event_deliveries SET status = ?, sent_at = ?, duration = ?,"
                " http_status = ?, response = ?, error = ?, token_hash = ? WHERE id = ?"
                " AND status IN (?, ?) RETURNING portal",  # not ended yet
                [status, sent_at, duration, http_status,
                 None if response is None else response[:RESPONSE_LIMIT], error, token_hash,
                 delivery_id, QUEUED, SENDING]).fetchone()
            if row is not None:
                self._ended(db, row[0])
                return True
            if db.execute("SELECT 1 FROM event_deliveries WHERE id = ?",
                          [delivery_id]).fetchone():
                return False  # ended already: a fallback after a later failure changes nothing
            _delete_tokens(db, (token_hash or "").split())
            return False

    def _ended(self, db, portal: str) -> None:
        """One more of the portal's deliveries ended: trim its history at every TRIM_EVERY-th.
        `db`: the write transaction (its lock serializes the count within this process)."""
        ended = self._ended_since_trim.get(portal, 0) + 1
        if ended < TRIM_EVERY:
            self._ended_since_trim[portal] = ended
            return
        self._ended_since_trim[portal] = 0
        self._trim(db, portal)

    def _trim(self, db, portal: str) -> None:
        """Keep the newest HISTORY_KEPT finished deliveries; drop older ones and their tokens."""
        cutoff = db.execute(
            "SELECT id FROM event_deliveries WHERE portal = ? AND status NOT IN (?, ?)"
            " ORDER BY id DESC LIMIT 1 OFFSET ?",
            [portal, QUEUED, SENDING, HISTORY_KEPT]).fetchone()
        if cutoff is None:
            return
        delete_deliveries(db, "portal = ? AND id <= ? AND status NOT IN (?, ?)",
                          [portal, cutoff[0], QUEUED, SENDING])

    def requeue_orphans(self, alive) -> int:
        """Put back deliveries whose claiming process is gone (`alive(claimed_by)` is False)."""
        rows = self.database.query(
            "SELECT id, claimed_by FROM event_deliveries WHERE status = ?", (SENDING,))
        orphans = [row["id"] for row in rows if not alive(row["claimed_by"])]
        if orphans:
            with self.database.write() as db:
                db.conn.executemany(
                    "UPDATE event_deliveries SET status = ?, claimed_by = NULL WHERE id = ?"
                    " AND status = ?", [(QUEUED, delivery_id, SENDING) for delivery_id in orphans])
        return len(orphans)

    def deliveries(self, portal: str, *, event: str | None = None, status: str | None = None,
                   limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
        """Deliveries newest first, and how many match."""
        where, args = "portal = ?", [portal]
        if event is not None:
            where += " AND event_name = ?"
            args.append(event.upper())
        if status is not None:
            where += " AND status = ?"
            args.append(status)
        rows = self.database.query(
            f"SELECT * FROM event_deliveries WHERE {where} ORDER BY id DESC"  # noqa: S608
            " LIMIT ? OFFSET ?", (*args, limit, offset))
        count_sql = f"SELECT count(*) AS n FROM event_deliveries WHERE {where}"  # noqa: S608
        total = self.database.query(count_sql, tuple(args))
        return [_delivery(row) for row in rows], total[0]["n"]

    def delivery(self, portal: str, delivery_id: int) -> dict | None:
        """One delivery, or None."""
        rows = self.database.query(
            "SELECT * FROM event_deliveries WHERE portal = ? AND id = ?", (portal, delivery_id))
        return _delivery(rows[0]) if rows else None

    # --- the offline queue --------------------------------------------------------------------

    def store_offline(self, handler: Handler, data, additional, now: float) -> bool:
        """Record an event in the app's offline queue; an unreserved record of the same object
        (same MESSAGE_ID) is updated instead. True when a new record was added."""
        mid = message_id(handler.event_name, data)
        with self.database.write() as db:
            updated = db.execute(
                "UPDATE event_offline SET timestamp_x = ?, event_data = ?, event_additional = ?"
                " WHERE portal = ? AND client_id = ? AND connector_id = ? AND message_id = ?"
                " AND process_id = ''",
                [now, json.dumps(data), json.dumps(additional), handler.portal,
                 handler.client_id, handler.connector_id, mid]).rowcount
            if updated:
                return False
            db.execute(
                "INSERT INTO event_offline (portal, client_id, connector_id, message_id,"
                " event_name, event_data, event_additional, timestamp_x)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [handler.portal, handler.client_id, handler.connector_id, mid,
                 handler.event_name, json.dumps(data), json.dumps(additional), now])
            return True

    def offline_reserve(self, portal: str, client_id: str, connector_id: str, *, error: bool,
                        where: str, args: list, order: str, limit: int,
                        process_id: str) -> int:
        """Mark up to `limit` unreserved records with `process_id` (event.offline.get); how many
        were marked (fewer than picked when another consumer reserved some meanwhile)."""
        with self.database.write() as db:
            sql = ("UPDATE event_offline SET process_id = ? WHERE id IN (SELECT id FROM"  # noqa: S608
                   " event_offline WHERE portal = ? AND client_id = ? AND connector_id = ? AND"
                   f" error = ? AND process_id = '' AND {where} ORDER BY {order} LIMIT ?)")
            return db.execute(sql, [process_id, portal, client_id, connector_id, int(error),
                                    *args, limit]).rowcount

    @staticmethod
    def new_process_id() -> str:
        """A process id for the records one event.offline.get call reserves."""
        return secrets.token_hex(16)

    def offline_records(self, portal: str, client_id: str, *, where: str, args: list,
                        order: str, limit: int, offset: int = 0) -> list[dict]:
        """Offline records of an app matching a condition."""
        sql = ("SELECT * FROM event_offline WHERE portal = ? AND client_id = ? AND"  # noqa: S608
               f" {where} ORDER BY {order} LIMIT ? OFFSET ?")
        return [_offline(row) for row in self.database.query(
            sql, (portal, client_id, *args, limit, offset))]

    def offline_clear(self, portal: str, client_id: str, connector_id: str, process_id: str, *,
                      ids: list[int] | None = None, message_ids: list[str] | None = None) -> int:
        """Delete records of a process (all, or those ids / MESSAGE_IDs)."""
        sql = ("DELETE FROM event_offline WHERE portal = ? AND client_id = ? AND"
               " connector_id = ? AND process_id = ?")
        args: list = [portal, client_id, connector_id, process_id]
        for column, values in (("id", ids), ("message_id", message_ids)):
            if values is not None:
                sql += f" AND {column} IN ({', '.join('?' for _ in values) or 'NULL'})"
                args += values
        with self.database.write() as db:
            return db.execute(sql, args).rowcount

    def offline_mark_error(self, portal: str, client_id: str, connector_id: str,
                           process_id: str, message_ids: list[str]) -> None:
        """event.offline.error: the process's records become error records (unreserved); the
        same objects' newer unreserved records are dropped, as the portal's three queries do."""
        marks = ", ".join("?" for _ in message_ids)
        base = ("portal = ? AND client_id = ? AND connector_id = ? AND"
                f" message_id IN ({marks})")
        args = [portal, client_id, connector_id, *message_ids]
        with self.database.write() as db:
            db.execute(f"DELETE FROM event_offline WHERE {base} AND error = 0"  # noqa: S608
                       " AND process_id <> ?", [*args, process_id])
            db.execute(f"DELETE FROM event_offline WHERE {base} AND error = 1"  # noqa: S608
                       " AND process_id = ''", args)
            db.execute(f"UPDATE event_offline SET error = 1, process_id = '' WHERE {base}"  # noqa: S608
                       " AND error = 0 AND process_id = ?", [*args, process_id])


def delete_deliveries(db, where: str, args: list) -> int:
    """Delete the deliveries matching `where` and the tokens issued for them (access and
    refresh); how many deliveries there were. `db`: a `Database.write()` transaction."""
    digests = [digest for (value,) in db.execute(
        f"SELECT token_hash FROM event_deliveries WHERE ({where})"  # noqa: S608
        " AND token_hash IS NOT NULL", args) for digest in value.split()]
    _delete_tokens(db, digests)
    return db.execute(f"DELETE FROM event_deliveries WHERE {where}", args).rowcount  # noqa: S608


def _delete_tokens(db, digests: list[str]) -> None:
    for start in range(0, len(digests), 500):
        chunk = digests[start:start + 500]
        db.execute(f"DELETE FROM tokens WHERE access_hash IN ({', '.join('?' for _ in chunk)})",  # noqa: S608
                   chunk)


def _delivery(row: dict) -> dict:
    return {**row, "data": json.loads(row["data"]) if row["data"] else None}


def _offline(row: dict) -> dict:
    return {**row, "event_data": json.loads(row["event_data"] or "null"),
            "event_additional": json.loads(row["event_additional"] or "null")}
