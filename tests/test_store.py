"""The SQLite store: WAL, schema version, a connection per thread, atomic writes."""

from __future__ import annotations

import threading

import pytest

from app.store.db import Database
from app.store.schema import MIGRATIONS


@pytest.fixture
def database(tmp_path) -> Database:
    db = Database(str(tmp_path / "store.sqlite3"))
    db.migrate()
    return db


def test_wal_mode_and_schema_version(database):
    assert database.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.schema_version() == len(MIGRATIONS)
    assert database.migrate() == len(MIGRATIONS)  # a second start changes nothing


def test_one_kept_connection_per_thread(database):
    main = database.db
    assert database.db is main
    seen = []
    worker = threading.Thread(target=lambda: seen.append(database.db))
    worker.start()
    worker.join()
    assert seen[0] is not main and seen[0].conn is not main.conn


def test_failed_write_rolls_back_everything(database):
    with database.write() as db:
        db["portals"].insert({"name": "kept", "domain": "x", "timezone": None})
    with pytest.raises(RuntimeError), database.write() as db:
        db.execute("DELETE FROM portals")
        db["portals"].insert({"name": "lost", "domain": "x", "timezone": None})
        raise RuntimeError("boom")
    assert [row["name"] for row in database.query("SELECT name FROM portals")] == ["kept"]
