"""The SQLite database: one kept connection per worker thread, WAL mode, versioned schema.

Every write goes through `Database.write()`, a ``BEGIN IMMEDIATE`` transaction, so several worker
processes on one file serialize their writes and a failure rolls everything back. sqlite-utils
operations inside it run as savepoints of that transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

from app.store.schema import MIGRATIONS

BUSY_TIMEOUT_SECONDS = 30


class Database:
    """A SQLite file shared by every thread and process of the emulator."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's sqlite-utils handle (a new connection after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.db = sqlite_utils.Database(self._connect())
            local.pid = os.getpid()
        return local.db

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only power loss can drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One atomic write transaction, taken with the write lock up front."""
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
        db.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        """Rows of a read query as dicts (always parameterised)."""
        return list(self.db.query(sql, params))

    def schema_version(self) -> int:
        """The version the file's schema is at (SQLite's user_version)."""
        return self.db.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Bring the schema up to date; safe when several processes start at once."""
        with self.write() as db:
            version = self.schema_version()
            for number, migration in enumerate(MIGRATIONS, start=1):
                if number > version:
                    migration(db)
                    db.conn.execute(f"PRAGMA user_version = {int(number)}")
        return self.schema_version()

    def close(self) -> None:
        """Close this thread's connection."""
        if getattr(self._local, "pid", None) == os.getpid():
            self._local.db.close()
        self._local = threading.local()
