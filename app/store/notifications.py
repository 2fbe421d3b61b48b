"""Notifications as the portal stores them: one row per recipient, TAG replacement per recipient.

`add` deletes the recipient's earlier notifications with the same stored tag and inserts the new
one in a single transaction (spec Part A 7, B 1.5), so concurrent adds with one tag leave one row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from app.store.db import Database

NOTIFY_CONFIRM, NOTIFY_FROM, NOTIFY_SYSTEM = 1, 2, 4


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


class NotificationStore:
    """Insert, replace, read and delete notifications."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, notification: NewNotification) -> int:
        """Store one notification, replacing the recipient's earlier ones with its tag."""
        row = asdict(notification)
        row["attach"] = json.dumps(row["attach"]) if row["attach"] is not None else None
        with self.database.write() as db:
            if notification.notify_tag:
                db.execute(
                    "DELETE FROM notifications WHERE portal = ? AND recipient_id = ?"
                    " AND notify_tag = ?",
                    [notification.portal, notification.recipient_id, notification.notify_tag],
                )
            return db["notifications"].insert(row).last_pk

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


def decode_row(row: dict) -> dict:
    """A stored row with its attach decoded and read state as a boolean."""
    return {**row, "attach": json.loads(row["attach"]) if row["attach"] else None,
            "is_read": bool(row["is_read"])}
