"""Notifications as the portal stores them: one row per recipient, TAG replacement per recipient.

`add` deletes the recipient's earlier notifications with the same stored tag and inserts the new
one in a single transaction (spec Part A 7, B 1.5), so concurrent adds with one tag leave one row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from b24emu.store.db import Database

NOTIFY_CONFIRM, NOTIFY_FROM, NOTIFY_SYSTEM = 1, 2, 4
# "MP|" + 5 hex + "|": the plain tag starts at character 10 (SQLite substr is 1-based).
TAG_PREFIX_LENGTH = 9


@dataclass(frozen=True)
class NotificationFilter:
    """Which notifications of a portal a query, update or delete touches; None = any.

    Every field becomes a fixed SQL condition with `?` placeholders (`_where`), so values
    such as "%", "_" or quotes match literally.
    """

    recipient_id: int | None = None
    sender_id: int | None = None
    notify_tag: str | None = None      # exact stored tag, e.g. "MP|a1b2c|build"
    tag: str | None = None             # plain tag: stored tags "MP|<any 5>|<tag>"
    notify_sub_tag: str | None = None
    sub_tag: str | None = None         # plain sub-tag, same rule
    notify_type: int | None = None
    is_read: bool | None = None
    since: float | None = None         # created_at >= since
    ids: tuple[int, ...] | None = None
    min_id: int | None = None          # id >= min_id
    text: str | None = None            # message contains (case-insensitive)
    below_id: int | None = None        # id < below_id (paging to older notifications)
    until: float | None = None         # created_at < until
    sender_ids: tuple[int, ...] | None = None


# A stored tag equal to a non-empty (text) value. The comparison of the plain part follows
# from the first; it and `!= ''` are there so that SQLite finds the rows through the tag
# column's one index (schema v11: plain part, rows with a tag only). The `+` keeps the
# equality from being planned as an index lookup: SQLite 3.40 then scans the whole portal.
_STORED_TAG_CONDITION = (f"({{column}} != '' AND +{{column}} = ? AND substr({{column}},"
                         f" {TAG_PREFIX_LENGTH + 1}) = substr(?, {TAG_PREFIX_LENGTH + 1}))")


# TAG replacement: the recipient's earlier notifications with the new one's stored tag.
_REPLACE_TAG = ("DELETE FROM notifications WHERE portal = ? AND recipient_id = ? AND "  # noqa: S608 (fixed text)
                + _STORED_TAG_CONDITION.format(column="notify_tag"))


def _stored_tag_condition(column: str, value: str) -> tuple[str, ...]:
    """SQL and values matching a stored tag exactly (the empty tag has no index entries)."""
    if value == "":
        return f"{column} = ?", value
    return _STORED_TAG_CONDITION.format(column=column), value, value


def _plain_tag_condition(column: str) -> str:
    """SQL matching the plain tag after any app prefix `MP|xxxxx|` of a stored tag column."""
    return (f"({column} != '' AND substr({column}, 1, 3) = 'MP|' AND substr({column}, 9, 1)"
            f" = '|' AND substr({column}, {TAG_PREFIX_LENGTH + 1}) = ?)")


def _where(portal: str, flt: NotificationFilter) -> tuple[str, list]:
    """The WHERE clause (fixed column names, `?` values) and its parameters."""
    clauses = ["portal = ?"]
    params: list = [portal]

    def add(clause: str, *values) -> None:
        clauses.append(clause)
        params.extend(values)

    if flt.recipient_id is not None:
        add("recipient_id = ?", int(flt.recipient_id))
    if flt.sender_id is not None:
        add("sender_id = ?", int(flt.sender_id))
    if flt.notify_tag is not None:
        add(*_stored_tag_condition("notify_tag", str(flt.notify_tag)))
    if flt.tag is not None:
        add(_plain_tag_condition("notify_tag"), str(flt.tag))
    if flt.notify_sub_tag is not None:
        add(*_stored_tag_condition("notify_sub_tag", str(flt.notify_sub_tag)))
    if flt.sub_tag is not None:
        add(_plain_tag_condition("notify_sub_tag"), str(flt.sub_tag))
    if flt.notify_type is not None:
        add("notify_type = ?", int(flt.notify_type))
    if flt.is_read is not None:
        add("is_read = ?", 1 if flt.is_read else 0)
    if flt.since is not None:
        add("created_at >= ?", float(flt.since))
    if flt.until is not None:
        add("created_at < ?", float(flt.until))
    if flt.ids is not None:
        ids = [int(value) for value in flt.ids]
        if not ids:
            clauses.append("0")
        else:
            add(f"id IN ({', '.join('?' for _ in ids)})", *ids)
    if flt.sender_ids is not None:
        senders = [int(value) for value in flt.sender_ids]
        if not senders:
            clauses.append("0")
        else:
            add(f"sender_id IN ({', '.join('?' for _ in senders)})", *senders)
    if flt.min_id is not None:
        add("id >= ?", int(flt.min_id))
    if flt.below_id is not None:
        add("id < ?", int(flt.below_id))
    if flt.text is not None:
        # instr, not LIKE: "%" and "_" are ordinary characters here.
        add("instr(lower(message), lower(?)) > 0", str(flt.text))
    return " AND ".join(clauses), params


@dataclass(frozen=True)
class NewNotification:
    """Everything a notify-add stores (CIMMessenger::Add fields, B 1.4)."""

    portal: str
    recipient_id: int
    sender_id: int
    notify_type: int
    message: str
    message_out: str
    notify_tag: str
    notify_sub_tag: str
    attach: dict | None
    created_at: float
    method: str
    auth_type: str
    credential: str
    module: str = "rest"
    event: str = "rest_notify"
    request_id: str = ""


# A plain INSERT with a fixed column list: the hot path of every add (no schema introspection).
_COLUMNS = tuple(field.name for field in fields(NewNotification))
_ATTACH_INDEX = _COLUMNS.index("attach")
_INSERT = (f"INSERT INTO notifications ({', '.join(_COLUMNS)})"  # noqa: S608
           f" VALUES ({', '.join('?' for _ in _COLUMNS)})")


class NotificationStore:
    """Insert, replace, read and delete notifications."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, notification: NewNotification) -> int:
        """Store one notification, replacing the recipient's earlier ones with its tag."""
        values = [getattr(notification, name) for name in _COLUMNS]
        attach = notification.attach
        values[_ATTACH_INDEX] = json.dumps(attach) if attach is not None else None
        with self.database.write() as db:
            if notification.notify_tag:
                db.execute(
                    _REPLACE_TAG,
                    [notification.portal, notification.recipient_id, notification.notify_tag,
                     notification.notify_tag],
                )
            return db.execute(_INSERT, values).lastrowid

    def get(self, portal: str, notification_id: int) -> dict | None:
        """One notification of a portal, or None."""
        rows = self.database.query(
            "SELECT * FROM notifications WHERE portal = ? AND id = ?", (portal, notification_id)
        )
        return decode_row(rows[0]) if rows else None

    def for_recipient(self, portal: str, recipient_id: int) -> list[dict]:
        """A recipient's notifications, newest first."""
        rows = self.database.query(
            "SELECT * FROM notifications WHERE portal = ? AND recipient_id = ? ORDER BY id DESC",
            (portal, recipient_id),
        )
        return [decode_row(row) for row in rows]

    def count(self, portal: str) -> int:
        """How many notifications a portal holds."""
        rows = self.database.query(
            "SELECT count(*) AS n FROM notifications WHERE portal = ?", (portal,)
        )
        return rows[0]["n"]


    def query(self, portal: str, flt: NotificationFilter = NotificationFilter(), *,
              limit: int = 50, offset: int = 0) -> list[dict]:
        """Matching notifications, newest first, decoded."""
        where, params = _where(portal, flt)
        rows = self.database.query(
            f"SELECT * FROM notifications WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
            tuple(params) + (max(0, int(limit)), max(0, int(offset))),
        )
        return [decode_row(row) for row in rows]

    def count_matching(self, portal: str, flt: NotificationFilter = NotificationFilter()) -> int:
        """How many notifications match."""
        where, params = _where(portal, flt)
        rows = self.database.query(
            f"SELECT count(*) AS n FROM notifications WHERE {where}", tuple(params)  # noqa: S608
        )
        return rows[0]["n"]

    def mark_read(self, portal: str, flt: NotificationFilter, *, read: bool, now: float) -> int:
        """Mark the matching notifications read (read_at = now) or unread; rows changed."""
        where, params = _where(portal, flt)
        with self.database.write() as db:
            sql = f"UPDATE notifications SET is_read = ?, read_at = ? WHERE {where}"  # noqa: S608
            cursor = db.execute(
                sql + " AND is_read != ?",
                [1 if read else 0, float(now) if read else None, *params, 1 if read else 0],
            )
            return cursor.rowcount

    def delete_matching(self, portal: str, flt: NotificationFilter) -> list[int]:
        """Delete the matching notifications in one transaction; their ids, ascending."""
        where, params = _where(portal, flt)
        with self.database.write() as db:
            select = f"SELECT id FROM notifications WHERE {where} ORDER BY id"  # noqa: S608
            ids = [row[0] for row in db.execute(select, params).fetchall()]
            if ids:
                db.execute(f"DELETE FROM notifications WHERE {where}", params)  # noqa: S608
        return ids

    def unread_count(self, portal: str, recipient_id: int) -> int:
        """A recipient's unread notifications (the NOTIFY counter)."""
        return self.count_matching(
            portal, NotificationFilter(recipient_id=recipient_id, is_read=False))

    def delete_all(self, portal: str) -> int:
        """Delete every notification of a portal; how many there were."""
        return len(self.delete_matching(portal, NotificationFilter()))


def decode_row(row: dict) -> dict:
    """A stored row with its attach decoded and read state as a boolean."""
    return {**row, "attach": json.loads(row["attach"]) if row["attach"] else None,
            "is_read": bool(row["is_read"])}
