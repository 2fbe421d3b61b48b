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
    """Every connection stops checkpointing inside its commits: those opened afterwards and
    those already open (a server worker's event loop serves calls on the connection that
    migrated the file; left on, every ~50th commit there checkpointed, a 10 ms call)."""
    database = Database(str(tmp_path / "cp.sqlite3"))
    database.migrate()  # this thread's connection opens before the switch
    opened_before = database.db.conn
    assert opened_before.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    seen: list = []
    other = threading.Thread(target=lambda: seen.append(database.db))  # kept: as if running
    other.start()
    other.join()
    thread = database.start_checkpointer(interval=0.01)
    assert thread.is_alive() and thread.daemon
    assert database.db.conn is opened_before
    for conn in (opened_before, seen[0].conn):
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    later: list = []
    other = threading.Thread(target=lambda: later.append(
        database.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]))
    other.start()
    other.join()
    assert later == [0]


def _log_frames(database) -> int:
    """Frames in the WAL's current log (not the file's size, which only ever grows)."""
    return database.db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def test_a_copied_log_starts_again_from_the_beginning(tmp_path):
    """The checkpointer's round copies the log into the database, the last pass under the
    write lock, so the next writer starts the log over: the file stops growing under a steady
    load and no writer waits for a TRUNCATE. A log that has not been restarting (over the
    bound) is left for a TRUNCATE."""
    import sqlite3

    from b24emu.store.db import _copy_log

    database = Database(str(tmp_path / "copy.sqlite3"))
    database.migrate()
    database.db.conn.execute("PRAGMA wal_autocheckpoint=0")
    with database.write() as db:
        db.execute("CREATE TABLE filler (x TEXT)")
    for _ in range(20):
        with database.write() as db:
            db.execute("INSERT INTO filler VALUES (?)", ["x" * 5000])
    size = database.wal_bytes()
    checkpointer = sqlite3.connect(database.path, isolation_level=None)
    assert not _copy_log(checkpointer, database.locked, most_frames=10)  # over the bound
    assert _copy_log(checkpointer, database.locked, most_frames=10**6)
    with database.write() as db:
        db.execute("INSERT INTO filler VALUES (?)", ["y" * 5000])
    assert _log_frames(database) < 20  # the one write, at the start of the log again
    assert database.wal_bytes() == size
    assert database.query("SELECT count(*) AS n FROM filler")[0]["n"] == 21
    assert database.write_lock_free()


def test_a_short_log_is_copied_without_taking_the_lock(tmp_path):
    """Below `restart_frames` a round copies the log without the write lock, so writers never
    wait for it (the log starts again only if no writer came during the copy); at or over it,
    the last copy holds the lock so that the next writer surely starts the log over."""
    import sqlite3

    from b24emu.store.db import _copy_log

    database = Database(str(tmp_path / "grow.sqlite3"))
    database.migrate()
    database.db.conn.execute("PRAGMA wal_autocheckpoint=0")
    with database.write() as db:
        db.execute("CREATE TABLE filler (x TEXT)")
        db.execute("INSERT INTO filler VALUES (?)", ["x" * 5000])
    checkpointer = sqlite3.connect(database.path, isolation_level=None)
    locked = []

    def exclusive():
        locked.append(1)
        return database.locked()

    frames = _log_frames(database)
    assert _copy_log(checkpointer, exclusive, most_frames=10**6, restart_frames=frames + 1)
    assert locked == []
    assert _copy_log(checkpointer, exclusive, most_frames=10**6, restart_frames=frames)
    with database.write() as db:
        db.execute("INSERT INTO filler VALUES (?)", ["z" * 5000])
    assert locked == [1] and _log_frames(database) < frames  # started again
    assert database.query("SELECT count(*) AS n FROM filler")[0]["n"] == 2


def test_a_round_leaves_the_copy_to_another_process_copying_at_that_moment():
    """SQLite answers busy when another connection's checkpoint is running: the round takes no
    lock (it would hold every writer for that other copy's fsyncs) and leaves the work to it."""
    from b24emu.store.db import _copy_log

    class Busy:
        def execute(self, sql):
            assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
            return self

        def fetchone(self):
            return (1, -1, -1)

    def exclusive():
        raise AssertionError("the write lock was taken")

    assert _copy_log(Busy(), exclusive, most_frames=10, restart_frames=0)


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


def test_a_waiting_probe_sees_the_lock_let_go_and_a_long_holder_costs_one_wait(tmp_path,
                                                                                 monkeypatch):
    """With `wait`, the probe looks again until the holder lets go (another worker's call is
    done within a millisecond). Once a wait was in vain, later probes do not wait until the
    lock has been seen free again, so a long holder stalls the event loop once."""
    import b24emu.store.db as db_module

    path = str(tmp_path / "wait.sqlite3")
    database = Database(path)
    database.migrate()
    other = os.open(path + "-writelock", os.O_RDWR)  # as another process holds it
    naps: list[float] = []

    def let_go_while_waiting(seconds: float) -> None:
        naps.append(seconds)
        fcntl.flock(other, fcntl.LOCK_UN)

    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        monkeypatch.setattr(db_module, "_sleep", let_go_while_waiting)
        assert database.write_lock_free(wait=60)
        assert naps == [db_module.LOCK_POLL_SECONDS]
        fcntl.flock(other, fcntl.LOCK_EX)
        clock = iter([0.0, 0.004, 0.006])  # the monotonic readings of one wait of 5 ms
        monkeypatch.setattr(db_module, "_sleep", naps.append)
        monkeypatch.setattr(db_module, "_monotonic", lambda: next(clock))
        assert not database.write_lock_free(wait=0.005)
        assert len(naps) == 3  # looked again twice, then gave up
        assert not database.write_lock_free(wait=60)  # no wait: the holder is a long one
        assert len(naps) == 3
        fcntl.flock(other, fcntl.LOCK_UN)
        assert database.write_lock_free(wait=60)  # seen free: the next busy probe waits again
        fcntl.flock(other, fcntl.LOCK_EX)
        clock = iter([0.0, 0.01])
        assert not database.write_lock_free(wait=0.005)
        assert len(naps) == 4
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


def test_a_reader_holding_a_snapshot_keeps_the_truncate_back_briefly(tmp_path):
    """A connection with an open read transaction (a database browser) keeps the WAL from being
    emptied: the TRUNCATE says so (the checkpoint thread then rests) and leaves the write lock
    free, instead of holding every writer for the busy timeout on every round."""
    import sqlite3

    from b24emu.store.db import TRUNCATE_WAIT_SECONDS, _truncate

    database = Database(str(tmp_path / "pinned.sqlite3"))
    database.migrate()
    with database.write() as db:
        db.execute("CREATE TABLE filler (x TEXT)")
    reader = sqlite3.connect(database.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM filler").fetchone()  # holds its snapshot
    with database.write() as db:
        db.execute("INSERT INTO filler VALUES ('after the reader began')")
    checkpointer = sqlite3.connect(database.path, timeout=TRUNCATE_WAIT_SECONDS,
                                   isolation_level=None)
    assert not _truncate(checkpointer, database.locked)
    assert database.write_lock_free() and database.wal_bytes() > 0
    reader.execute("COMMIT")
    assert _truncate(checkpointer, database.locked)
    assert database.wal_bytes() == 0
    assert database.query("SELECT count(*) AS n FROM filler")[0]["n"] == 1


def test_a_kept_back_truncate_rests_only_the_truncate_the_log_still_restarts(tmp_path, caplog):
    """After a TRUNCATE was kept back (a reader's old snapshot), the rounds that follow take
    no TRUNCATE, but a log that has grown is still copied and started over, so the WAL file
    stops growing while the checkpoint thread rests (resting from everything let it grow to
    6.7 times the limit)."""
    import sqlite3

    from b24emu.store.db import (
        TRUNCATE_REST_ROUNDS,
        TRUNCATE_WAIT_SECONDS,
        _CheckpointState,
        _truncate,
    )

    database = Database(str(tmp_path / "rest.sqlite3"))
    database.migrate()
    database.db.conn.execute("PRAGMA wal_autocheckpoint=0")
    with database.write() as db:
        db.execute("CREATE TABLE filler (x TEXT)")
    checkpointer = sqlite3.connect(database.path, timeout=TRUNCATE_WAIT_SECONDS,
                                   isolation_level=None)
    assert _truncate(checkpointer, database.locked)  # the migration's pages out of the log
    reader = sqlite3.connect(database.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM filler").fetchone()  # holds its snapshot
    with database.write() as db:
        db.execute("INSERT INTO filler VALUES ('after the reader began')")
    state, limit = _CheckpointState(), 64 * 1024

    def round_(due=True):
        database._checkpoint_round(checkpointer, state, database.wal_bytes(), limit, 0.5,
                                   due=due)

    round_()  # a write since: copies (the reader keeps the end), under the restart size
    round_()  # idle: TRUNCATE, kept back by the reader
    assert state.resting == TRUNCATE_REST_ROUNDS
    assert "could not be emptied" in caplog.text
    reader.execute("COMMIT")
    for _ in range(30):  # well past the restart size (3/8 of 64 KiB)
        with database.write() as db:
            db.execute("INSERT INTO filler VALUES (?)", ["x" * 3000])
    grown = database.wal_bytes()
    round_()  # resting: copied and restarted, not truncated
    assert state.resting == TRUNCATE_REST_ROUNDS - 1 and database.wal_bytes() == grown
    for _ in range(30):
        with database.write() as db:
            db.execute("INSERT INTO filler VALUES (?)", ["y" * 3000])
    assert database.wal_bytes() == grown  # written over the copied log, not after it
    assert database.query("SELECT count(*) AS n FROM filler")[0]["n"] == 61


def test_the_wal_of_a_database_reached_through_a_symlink_is_measured(tmp_path):
    """SQLite keeps `-wal` beside the real file: measured through a symlinked path it read 0,
    and the checkpoint thread, taking the log for empty, let it grow without bound."""
    real = tmp_path / "real.sqlite3"
    link = tmp_path / "link.sqlite3"
    link.symlink_to(real)
    database = Database(str(link))
    database.migrate()
    with database.write() as db:
        db.execute("CREATE TABLE filler (x TEXT)")
        db.execute("INSERT INTO filler VALUES (?)", ["x" * 100_000])
    assert not (tmp_path / "link.sqlite3-wal").exists()
    assert database.wal_bytes() == os.path.getsize(tmp_path / "real.sqlite3-wal") > 100_000


def test_a_failed_control_version_bump_still_lets_the_write_lock_go(database, monkeypatch):
    """The version is bumped under the lock after COMMIT; if that write fails (a full disk),
    the error is raised, and the lock is let go all the same: every writer of every process
    would otherwise wait for it for ever."""
    from b24emu.store.db import note_control_change

    def full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Database, "_bump_control_version", full)
    with pytest.raises(OSError, match="No space left"):
        with database.write() as db:
            db.execute("INSERT INTO control (key, value) VALUES ('k', 'v')")
            note_control_change(db)
    assert database.write_lock_free()
    assert database.query("SELECT value FROM control WHERE key = 'k'") == [{"value": "v"}]
    lock = os.open(os.path.realpath(database.path) + "-writelock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process could take it
    finally:
        os.close(lock)
