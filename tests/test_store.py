"""The SQLite store: WAL, schema version, a connection per thread, atomic writes."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest
from b24emu.store.db import Database
from b24emu.store.schema import MIGRATIONS


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


def test_background_checkpoints_take_the_wal_out_of_requests(tmp_path):
    database = Database(str(tmp_path / "cp.sqlite3"))
    thread = database.start_checkpointer(interval=0.01)
    assert thread.is_alive() and thread.daemon
    database.migrate()  # this thread's connection opens after the switch
    assert database.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0


def test_the_checkpointer_outlives_a_failed_round(tmp_path, monkeypatch):
    """A round whose write lock cannot be taken (an OSError from the lock file) is retried: the
    thread lives on and empties the WAL once the lock works again, so the WAL stays bounded."""
    database = Database(str(tmp_path / "cp.sqlite3"))
    database.migrate()
    real, failures = database._exclusive, []

    def flaky():
        if not failures:
            failures.append(1)
            raise OSError("lock file gone")
        return real()

    monkeypatch.setattr(database, "_exclusive", flaky)
    with database.write() as db:
        db.execute("CREATE TABLE filler (x TEXT)")
        db.execute("INSERT INTO filler VALUES (?)", ["x" * 200_000])
    assert database.wal_bytes() > 0
    thread = database.start_checkpointer(interval=0.01, wal_limit=4096)
    deadline = time.monotonic() + 10
    while database.wal_bytes() > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert failures == [1] and thread.is_alive()
    assert database.wal_bytes() == 0


def test_writers_queue_on_a_lock_file_beside_the_database(database, tmp_path):
    with database.write() as db:
        db.execute("CREATE TABLE q (x INTEGER)")
    assert (tmp_path / "store.sqlite3-writelock").exists()
    errors = []

    def writer(n: int) -> None:
        try:
            for _ in range(50):
                with database.write() as db:
                    value = db.execute("SELECT count(*) FROM q").fetchone()[0]
                    db.execute("INSERT INTO q VALUES (?)", [value])
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = [row["x"] for row in database.query("SELECT x FROM q ORDER BY rowid")]
    assert errors == [] and values == list(range(200))  # read-then-write never interleaved


def test_the_write_lock_probe_sees_every_holder_and_frees_none(tmp_path):
    """`write_lock_free` (whether a call may run on the event loop's thread) says no while a
    thread or another process holds the write lock, and probing never releases their lock."""
    path = str(tmp_path / "probe.sqlite3")
    database = Database(path)
    database.migrate()
    assert database.write_lock_free()
    with database.locked():
        seen: list = []
        probe = threading.Thread(target=lambda: seen.append(database.write_lock_free()))
        probe.start()
        probe.join()
        assert seen == [False]
        other = os.open(path + "-writelock", os.O_RDWR)  # as another process opens it
        try:
            with pytest.raises(BlockingIOError):  # the probe left our lock in place
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    other = os.open(path + "-writelock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        assert not database.write_lock_free()
        fcntl.flock(other, fcntl.LOCK_UN)
        assert database.write_lock_free()
    finally:
        os.close(other)


def test_a_new_file_has_small_pages_and_an_old_one_keeps_its_own(tmp_path):
    """New files use 1 KB pages (each commit writes every page it changed, whole, to the WAL);
    a file made with SQLite's default 4 KB pages is used as it is."""
    import sqlite3

    fresh = Database(str(tmp_path / "new.sqlite3"))
    fresh.migrate()
    assert fresh.db.conn.execute("PRAGMA page_size").fetchone()[0] == 1024
    old_path = str(tmp_path / "old.sqlite3")
    conn = sqlite3.connect(old_path)
    conn.execute("CREATE TABLE made_before (x)")
    conn.close()
    old = Database(old_path)
    old.migrate()
    assert old.db.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert old.schema_version() == len(MIGRATIONS)


def test_the_write_lock_inside_a_unit_never_waits_for_itself(tmp_path):
    """`locked()` inside a unit whose transaction is open runs under the unit's own lock; after
    the transaction was ended early (SQLite may roll back by itself), it lets the lock go and
    takes it again, instead of waiting forever for its own thread."""
    database = Database(str(tmp_path / "unit.sqlite3"))
    database.migrate()
    done: list[str] = []

    def run() -> None:
        with database.unit():
            with database.joined(), database.write() as db:
                db.execute("INSERT INTO control (key, value) VALUES ('a', '1')")
            with database.locked():
                done.append("open")
            database.db.conn.execute("ROLLBACK")  # the transaction ends under the unit
            with database.locked():
                done.append("ended")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done == ["open", "ended"]
    assert database.write_lock_free()


def test_every_write_to_the_cached_portal_rows_tells_the_other_processes(emulator):
    """Users, webhooks and apps are cached per process until the `portals_version` control row
    moves: installing or uninstalling an app moves it, as reloading a portal does."""
    def version():
        return emulator.control.snapshot().portals_version

    before = version()
    emulator.portals.set_app_active("default", "local.emulator.app", False)
    after_uninstall = version()
    emulator.portals.set_app_active("default", "local.emulator.app", True)
    assert len({before, after_uninstall, version()}) == 3
