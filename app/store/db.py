"""The SQLite database: one kept connection per worker thread, WAL mode, versioned schema.

Every write goes through `Database.write()`, a ``BEGIN IMMEDIATE`` transaction, so several worker
processes on one file serialize their writes and a failure rolls everything back. sqlite-utils
operations inside it run as savepoints of that transaction.

Writers queue on a lock before they begin: a thread lock inside the process and an `flock` on
`<file>-writelock` across processes. Without it, a writer that finds SQLite's lock taken sleeps in
SQLite's busy handler (1, 2, 5, 10 … ms steps) and the tail latency grows with the number of
threads; with it, the next writer starts the moment the last one commits. The kernel drops the
`flock` of a killed process, so a crash never leaves the file locked.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlite_utils
from b24emu.store.schema import MIGRATIONS

log = logging.getLogger("b24emu")

BUSY_TIMEOUT_SECONDS = 30
# Pages of a new file. Every commit appends each page it changed, whole, to the WAL, and the
# checkpoint copies them back: an add changes about a dozen pages (the row, its indexes, the
# journal's), so 1 KB pages write 13 KB per add where SQLite's default 4 KB pages write 47 KB.
# A file made with another size keeps it.
PAGE_SIZE = 1024
LOCK_POLL_SECONDS = 0.0001  # how often a waiting probe looks at the write lock again
WAL_POLL_SECONDS = 0.05  # how often the checkpoint thread looks at the WAL's size
WAL_FRAME_HEADER = 24  # bytes before each page in the WAL
COPY_ROUNDS = 3  # lock-free checkpoint passes before the short one under the write lock
RESTART_AT = 3  # eighths of the WAL limit: a log this long is started again (see _copy_log)
SMALL_REMAINDER_FRAMES = 64  # left uncopied after a pass: small enough to copy under the lock
TRUNCATE_WAIT_SECONDS = 0.02  # how long a TRUNCATE (under the write lock) waits for readers
TRUNCATE_REST_ROUNDS = 10  # checkpoint rounds without a TRUNCATE after readers kept one back
DEFAULT_WAL_LIMIT = 64 * 1024 * 1024  # the WAL stays below this (B24EMU_WAL_LIMIT_BYTES)
CONTROL_VERSION_BYTES = 8  # the lock file holds the control version (see control_version)


# The lock probe's clock and nap, apart from `time`'s so that a test can steer them without
# steering other threads (a checkpoint thread sleeps through `time.sleep` too).
_monotonic = time.monotonic
_sleep = time.sleep


class _Pid:
    """This process's id, kept up to date across forks: a connection or lock opened before a
    fork must not be used after it, and asking the kernel on each of the dozen checks a call
    makes costs a system call each."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()


os.register_at_fork(after_in_child=_Pid.refresh)


class Database:
    """A SQLite file shared by every thread and process of the emulator."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._lock_pid: int | None = None
        self._background_checkpoints = False
        self._lock_long_held = False  # a waiting probe gave up (see write_lock_free)
        self._handles: weakref.WeakSet = weakref.WeakSet()  # every thread's, to reconfigure

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's sqlite-utils handle (a new connection after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != _Pid.value:
            local.db = sqlite_utils.Database(self._connect())
            local.pid = local.db._b24emu_pid = _Pid.value
            self._handles.add(local.db)
        return local.db

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # no effect once the file has tables
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only power loss can drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if self._background_checkpoints:
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it
        return conn

    def start_checkpointer(self, interval: float = 0.5,
                           wal_limit: int = DEFAULT_WAL_LIMIT) -> threading.Thread:
        """Keep the WAL small from a background thread of this process, not inside requests.

        SQLite otherwise checkpoints in whichever commit crosses 1000 WAL pages (that request
        waits 10 ms or more). Every `interval` this thread copies the log into the database
        (PASSIVE: no lock, writers go on meanwhile). Once the log has grown to `RESTART_AT`
        eighths of `wal_limit`, a last short copy under the write lock reaches its end, so the
        next writer starts the log again from its beginning: under a steady load the file stops
        growing at about that size, and writers wait for that copy (two fsyncs, 5-10 ms) once
        per that many bytes written rather than at every round (the log reaches that size plus
        up to one round's writes, about 33 MB at 10 connections here). Only when the log itself
        (not the file) is still over three quarters of `wal_limit` after a copy (readers kept it
        from restarting), or the file is over seven eighths of it (its size is looked at every
        `WAL_POLL_SECONDS`), or no write came since the last round, does it take the write lock
        and checkpoint with TRUNCATE, which empties the file. So the WAL stays below
        `wal_limit` and is empty once the load ends, unless a connection keeps a read
        transaction open: then no checkpoint can reach the end of the log, the TRUNCATE gives up
        after `TRUNCATE_WAIT_SECONDS` and is not tried again for `TRUNCATE_REST_ROUNDS` rounds
        (the log is still copied and started over meanwhile).
        (Taking the lock for a TRUNCATE whenever the file passed a quarter of the limit held
        every writer for 50-80 ms about once a second at 1,000 adds a second; restarting the
        log at every round held them 5-10 ms twice a second, which set the p99 at 10
        connections.)

        A server worker calls this once; its connections, those already open (the one that
        migrated the file serves its event loop's calls) and those opened afterwards, turn
        automatic checkpoints off: one left on checkpointed inside every ~50th commit.
        """
        self._background_checkpoints = True
        for handle in list(self._handles):
            if getattr(handle, "_b24emu_pid", None) == _Pid.value:
                handle.conn.execute("PRAGMA wal_autocheckpoint=0")

        def run() -> None:
            conn = sqlite3.connect(self.path, timeout=TRUNCATE_WAIT_SECONDS,
                                   isolation_level=None, check_same_thread=False)
            state, rounds = _CheckpointState(), 0
            while True:
                time.sleep(WAL_POLL_SECONDS)  # a stat() per poll; SQLite only every interval
                rounds += 1
                due = rounds * WAL_POLL_SECONDS >= interval
                if due:
                    rounds = 0
                size = self.wal_bytes()
                if size <= wal_limit * 7 // 8 and not due:
                    continue
                try:
                    self._checkpoint_round(conn, state, size, wal_limit, interval, due=due)
                except (sqlite3.Error, OSError):
                    continue  # busy, or the lock file not at hand: the next round does it

        thread = threading.Thread(target=run, name="b24emu-wal-checkpoint", daemon=True)
        thread.start()
        return thread

    def _checkpoint_round(self, conn: sqlite3.Connection, state: _CheckpointState, size: int,
                          wal_limit: int, interval: float, *, due: bool) -> None:
        """One round of the checkpoint thread (`start_checkpointer`): the WAL file is `size`
        bytes; `due` once every interval (else the file has passed seven eighths of the limit).
        """
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        idle, state.last_version = version == state.last_version, version
        if size == 0:
            return
        frame_bytes = WAL_FRAME_HEADER + conn.execute("PRAGMA page_size").fetchone()[0]
        restart_frames = (wal_limit * RESTART_AT // 8) // frame_bytes
        if state.resting:
            # The last TRUNCATE was kept back (a reader's old snapshot, or another process
            # copying at that moment): no TRUNCATE for a while, so writers are not held up
            # again and again, but the log is still started over whenever it can be.
            if due:
                state.resting -= 1
                _copy_log(conn, self._exclusive, sys.maxsize, restart_frames)
            return
        if not idle and size <= wal_limit * 7 // 8 and _copy_log(
                conn, self._exclusive, (wal_limit * 3 // 4) // frame_bytes, restart_frames):
            return
        if not _truncate(conn, self._exclusive):
            state.resting = TRUNCATE_REST_ROUNDS
            log.warning("the WAL could not be emptied: a reader holds an old snapshot open, or"
                        " another process was copying it (tried again in %.0f s)",
                        TRUNCATE_REST_ROUNDS * interval)

    def wal_bytes(self) -> int:
        """The size of the write-ahead log file (0 when it is empty or absent), beside the
        database's real path as SQLite keeps it (a symlinked path has no `-wal` of its own)."""
        try:
            return os.path.getsize(os.path.realpath(self.path) + "-wal")
        except OSError:
            return 0

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The write lock of every thread and process on this file (see the module doc)."""
        local = self._local
        if getattr(local, "pending", False):  # this thread's unit holds the lock already
            if self.db.conn.in_transaction:
                yield
                return
            local.pending = False  # its transaction was ended early: let the lock go first
            self._release()
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def locked(self):
        """The write lock alone, for a few autocommit statements that must not interleave with
        any other writer (e.g. a read then a write of one row)."""
        return self._exclusive()

    def write_lock_free(self, wait: float = 0.0) -> bool:
        """No thread or process holds the write lock now, or it was let go within `wait`
        seconds (a probe: the answer can be stale the moment it is given). The thread lock is
        held while the file lock is probed: an `flock` belongs to the open file, so probing it
        while another thread of this process held it would release theirs.

        After a probe that waited in vain, the next ones do not wait until the lock has been
        seen free again: a long holder (a checkpoint, a reset) costs one wait, not one a call.
        """
        lock_fd = self._process_lock()
        deadline = None
        while True:
            if self._lock_free_now(lock_fd):
                self._lock_long_held = False
                return True
            if wait <= 0 or self._lock_long_held:
                return False
            now = _monotonic()
            deadline = now + wait if deadline is None else deadline
            if now >= deadline:
                self._lock_long_held = True
                return False
            _sleep(LOCK_POLL_SECONDS)

    def _lock_free_now(self, lock_fd: int | None) -> bool:
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            if lock_fd is None:
                return True
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            return True
        finally:
            self._write_lock.release()

    def _acquire(self) -> None:
        lock_fd = self._process_lock()
        self._write_lock.acquire()
        if lock_fd is not None:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            except BaseException:
                self._write_lock.release()
                raise

    def _release(self) -> None:
        handle = getattr(self._local, "db", None)
        if handle is not None and getattr(handle, "_b24emu_control_changed", False):
            # After the COMMIT (or ROLLBACK), still under the lock: a reader that sees the new
            # version finds the change committed, and bumps never interleave.
            handle._b24emu_control_changed = False
            try:
                self._bump_control_version()
            except OSError:  # the disk full, say: the lock must still be let go
                self._unlock()
                raise
        self._unlock()

    def _unlock(self) -> None:
        try:
            if self._lock_fd is not None and self._lock_pid == _Pid.value:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._write_lock.release()

    @contextmanager
    def write(self, *, savepoint: bool = True) -> Iterator[sqlite_utils.Database]:
        """One atomic write transaction, taken with the write lock up front.

        Inside an open transaction it is a savepoint of it (or, with `savepoint=False`, plain
        statements of it). Inside `joined()` of a `unit()` it begins the unit's transaction and
        leaves it open: the unit commits it when it ends.
        """
        db = self.db
        conn = db.conn
        if conn.in_transaction:
            if savepoint:
                with db.atomic():
                    yield db
            else:
                yield db
            return
        local = self._local
        if getattr(local, "pending", False):  # the unit's transaction was ended early
            local.pending = False
            self._release()
        self._acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled it back already
                    conn.execute("ROLLBACK")
                raise
            if getattr(local, "joining", False):
                local.pending = True  # committed (and the lock released) by unit()
                return
            conn.execute("COMMIT")
        except BaseException:
            self._release()
            raise
        self._release()

    @contextmanager
    def unit(self) -> Iterator[None]:
        """One request's unit of work: the writes made inside `joined()` and every write after
        them, up to the end of the unit, are one transaction, committed when the unit ends
        (whatever way it ends). Python work before the first joined write holds no lock."""
        local = self._local
        if getattr(local, "in_unit", False):
            yield
            return
        local.in_unit, local.pending = True, False
        try:
            yield
        finally:
            local.in_unit, local.joining = False, False
            if local.pending:
                local.pending = False
                conn = self.db.conn
                try:
                    if conn.in_transaction:  # else ended early by someone else's COMMIT
                        conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    self._release()

    def abandon(self) -> None:
        """Inside a `unit()`: roll back what it has written so far; its transaction ends and
        the write lock is released (a later write begins a new one)."""
        local = self._local
        if getattr(local, "pending", False):
            local.pending = False
            conn = self.db.conn
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            finally:
                self._release()

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Inside a `unit()`: a write made here stays open for the unit to commit."""
        local = self._local
        if not getattr(local, "in_unit", False):
            yield
            return
        local.joining = True
        try:
            yield
        finally:
            local.joining = False

    def _process_lock(self) -> int | None:
        """The file descriptor writers of every process `flock`; reopened after a fork."""
        if self.path == ":memory:" or self.path.startswith("file:"):
            return None
        pid = _Pid.value
        if self._lock_pid != pid:
            self._write_lock = threading.Lock()  # a forked child starts with no writer
            # The file's real path, as SQLite opens it: a database reached through a symlink
            # shares its writers' lock and its control version with every other path to it.
            path = os.path.realpath(self.path) + "-writelock"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            self._lock_pid = pid
        return self._lock_fd

    # --- the control version --------------------------------------------------------------------

    def control_version(self) -> int | None:
        """A number every process of this file sees change after any committed write that
        called `note_control_change`: a reader may keep what it read of that state for as long
        as the number stays the same (`ControlStore.snapshot`, `OperatingLimiter.live`). None
        for a database with no lock file (":memory:" or a "file:" URI): nothing may be kept.

        It is the lock file's first bytes (none yet: 0), read with one `pread` and no SQL. A
        process that changes the control state bumps it after its COMMIT, before it lets the
        write lock go, so bumps never interleave. (Not a memory map: that holds a second
        descriptor per database and dies of SIGBUS if the file is cut short.)"""
        lock_fd = self._process_lock()
        if lock_fd is None:
            return None
        return int.from_bytes(os.pread(lock_fd, CONTROL_VERSION_BYTES, 0), "little")

    def _bump_control_version(self) -> None:
        version = self.control_version()
        if version is None:
            return
        value = (version + 1) % (1 << (8 * CONTROL_VERSION_BYTES))
        os.pwrite(self._lock_fd, value.to_bytes(CONTROL_VERSION_BYTES, "little"), 0)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        """Rows of a read query as dicts (always parameterised)."""
        # The plain connection: sqlite-utils' query() wraps each read in a SAVEPOINT, which
        # triples the statements on every request's hot path.
        cursor = self.db.conn.execute(sql, params)
        keys = [column[0] for column in cursor.description or ()]
        return [dict(zip(keys, row, strict=True)) for row in cursor]

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
        if getattr(self._local, "pid", None) == _Pid.value:
            self._local.db.close()
        self._local = threading.local()


@dataclass
class _CheckpointState:
    """What the checkpoint thread carries from one round to the next."""

    last_version: int | None = None  # PRAGMA data_version at the last round: idle if the same
    resting: int = 0  # due rounds left without a TRUNCATE after one was kept back


def note_control_change(db: sqlite_utils.Database) -> None:
    """Inside a write transaction that changes state every call reads and that rarely changes
    (what `ControlStore.snapshot` reads: clock, faults and stubs flags, portals version; the
    operating-limit buckets, `OperatingLimiter.live`): every process reads it again once the
    write ends. A writer of that state that does not call this leaves other processes on the
    old state."""
    db._b24emu_control_changed = True


def _copy_log(conn: sqlite3.Connection, exclusive, most_frames: int,
              restart_frames: int = 0) -> bool:
    """Copy the WAL into the database, and once the log holds `restart_frames` frames or more
    make the next writer start it again from its beginning; False when the log was over
    `most_frames` frames (it has not been restarting: a TRUNCATE is due).

    Copies run without the write lock while writers go on (PASSIVE), each one copying what was
    written during the one before, until what is left is small. The restart needs one last
    copy under the write lock that reaches the end of the log; its cost is two fsyncs (5–10 ms
    under load here, whatever it copies), which every writer waits for, so it is made only
    when the log has grown to `restart_frames`, not at every round. When another process's
    checkpoint is copying at the same moment, this round leaves the work to it.
    """
    frames = 0
    for _ in range(COPY_ROUNDS):
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy:
            return True
        if frames > most_frames:
            return False
        if frames - copied <= SMALL_REMAINDER_FRAMES:
            break
    if frames < restart_frames:
        return True
    with exclusive():
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return True


def _truncate(conn: sqlite3.Connection, exclusive) -> bool:
    """Empty the WAL under the write lock; False when a reader's open snapshot kept it (SQLite
    waits `TRUNCATE_WAIT_SECONDS` for readers, then gives up: writers wait that long at most).
    A connection that keeps a read transaction open (a database browser, say) would otherwise
    hold every writer for the busy timeout on every round."""
    with exclusive():
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy

