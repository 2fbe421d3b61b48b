"""The request-rate limit: a leaky bucket per (portal, client IP), kept in SQLite (Part A 10).

Each admitted request adds 1; the level drains at `drain` per second; a request that would take
the level above `capacity` is refused and adds nothing. The bucket is read and written under the
database's write lock (which every writer of every process takes), so every worker process shares
it and a restart keeps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from b24emu.store.db import Database, note_control_change

# A request exactly at the boundary is admitted even when float sums of times fall a hair short.
EPSILON = 1e-9
PRUNE_EVERY = 256  # every this many counted calls, drained buckets are deleted
LAST_COUNTED_KEPT = 4096  # buckets whose last counted level a process remembers (for `fits`)
PRESETS = {"standard": (50.0, 2.0), "enterprise": (250.0, 5.0), "off": None}


@dataclass(frozen=True)
class RateLimit:
    """Capacity (X) and drain per second (Y) of the bucket."""

    capacity: float
    drain: float


def rate_limit_for(preset: str, capacity: float | None = None,
                   drain: float | None = None) -> RateLimit | None:
    """The limit a preset names, with optional overrides; None when the limit is off."""
    if preset not in PRESETS:
        raise ValueError(f"unknown rate limit preset {preset!r} (choose {', '.join(PRESETS)})")
    base = PRESETS[preset]
    if base is None:
        return None
    return RateLimit(capacity if capacity is not None else base[0],
                     drain if drain is not None else base[1])


class RateLimiter:
    """Admit or refuse one request against its bucket."""

    def __init__(self, database: Database, limit: RateLimit):
        self.database = database
        self.limit = limit
        self._counted = 0  # calls counted by this process: every PRUNE_EVERY-th prunes
        # (portal, client IP) -> (level, updated_at) as this process last counted it: a bucket
        # only fills by counted calls, so the level now is at least that one drained to now.
        self._last_counted: dict[tuple[str, str], tuple[float, float]] = {}

    def admit(self, portal: str, client_ip: str, now: float) -> bool:
        """True (and counted) if the request fits in the bucket, else False (not counted)."""
        database = self.database
        conn = database.db.conn
        if conn.in_transaction:
            return self._admit(conn, portal, client_ip, now)
        # Two autocommit statements under the write lock every writer takes: no other writer
        # runs between the read and the write, and no BEGIN/COMMIT round trip is needed.
        with database.locked():
            return self._admit(conn, portal, client_ip, now)

    def fits(self, portal: str, client_ip: str, now: float) -> bool:
        """Whether a request would be admitted now, counting nothing (no lock).

        A call whose writes join its unit of work is checked with this before it runs and
        counted with `admit` inside that unit's transaction, which `admit` re-checks: when
        another worker filled the bucket in between, the unit is rolled back and the call
        refused, so the bucket admits exactly what it admits with `admit` alone. So this is
        only the early answer that spares a refused call its work: while the level this
        process last counted leaves room for one more, the answer is yes without a read (the
        usual case, well below the capacity); closer to it, the stored bucket is read."""
        last = self._last_counted.get((portal, client_ip))
        if last is not None and self.drained(last, now) + 2 <= self.limit.capacity:
            return True
        row = self.database.db.conn.execute(
            "SELECT level, updated_at FROM rate_buckets WHERE portal = ? AND client_ip = ?",
            (portal, client_ip),
        ).fetchone()
        return self.drained(row, now) + 1 <= self.limit.capacity + EPSILON

    def _admit(self, conn, portal: str, client_ip: str, now: float) -> bool:
        row = conn.execute(
            "SELECT level, updated_at FROM rate_buckets WHERE portal = ? AND client_ip = ?",
            (portal, client_ip),
        ).fetchone()
        level = self.drained(row, now)
        admitted = level + 1 <= self.limit.capacity + EPSILON
        if admitted:
            level += 1
        conn.execute(
            "INSERT INTO rate_buckets (portal, client_ip, level, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (portal, client_ip)"
            " DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at",
            (portal, client_ip, level, max(now, row[1]) if row else now),
        )
        self._counted += 1
        if len(self._last_counted) >= LAST_COUNTED_KEPT:
            self._last_counted.clear()
        self._last_counted[(portal, client_ip)] = (level, max(now, row[1]) if row else now)
        if self._counted % PRUNE_EVERY == 0:
            # A bucket untouched long enough to drain from full is empty, exactly as a missing
            # row: one row per client address ever seen would otherwise stay forever.
            conn.execute("DELETE FROM rate_buckets WHERE updated_at < ?",
                         (now - self.limit.capacity / self.limit.drain,))
        return admitted

    def drained(self, row, now: float) -> float:
        """The level of a stored bucket at `now` (a clock moved back drains nothing)."""
        if row is None:
            return 0.0
        level, updated_at = row
        return max(0.0, level - self.limit.drain * max(0.0, now - updated_at))


# The operating budget (Part A 11, B 5.2, LoadLimiter): ten one-minute buckets of handler time per
# (auth type, app or webhook, method); only runs over 0.1 s count; a bucket expires 600 s after
# its first run; over the limit the method is refused until the oldest bucket expires.
MINIMAL_FIX_TIME = 0.1
BUCKET_LIFETIME = 600
LIVE_KEPT = 4096  # keys whose live buckets a process keeps (all forgotten when it is full)
IGNORED_METHODS = frozenset({"batch"})  # LoadLimiter::$ignoreMethod: batch itself is not billed


@dataclass(frozen=True)
class Budget:
    """What `time.operating` and `time.operating_reset_at` report for one call."""

    operating: float
    reset_at: int | None


class OperatingLimiter:
    """Check and charge a method's operating time, shared by every worker through SQLite."""

    def __init__(self, database: Database, limit_seconds: float, costs: dict[str, float]):
        self.database = database
        self.limit_seconds = limit_seconds
        self.costs = costs
        # key -> (control version, live rows when read): buckets change only when a run over
        # MINIMAL_FIX_TIME is charged (or on reset), and both bump the control version.
        self._live: dict[tuple, tuple[int, list]] = {}

    def blocked(self, key: tuple, now: float, live: list | None = None) -> bool:
        """True when the method's live buckets already exceed the limit."""
        if self.limit_seconds <= 0 or key[3] in IGNORED_METHODS:
            return False
        budget = self.budget(key, now) if live is None else _budget_of(live, now)
        return budget.operating > self.limit_seconds

    def charge(self, key: tuple, run_seconds: float, now: float,
               live: list | None = None) -> Budget:
        """Count one finished run; report the budget. A method with a simulated cost is billed
        exactly that cost instead of its measured run time. `live` (from `live`, read when the
        call started) spares a read when this run adds nothing."""
        if key[3] in IGNORED_METHODS:
            return Budget(0, None)
        seconds = self.costs.get(key[3], run_seconds)
        if seconds > MINIMAL_FIX_TIME:
            with self.database.write() as db:
                # Expired buckets go as new ones come, so a key never holds more than ~11 rows.
                db.execute(
                    "DELETE FROM operating_buckets WHERE portal = ? AND auth_type = ?"
                    " AND credential = ? AND method = ? AND first_at + ? <= ?",
                    [*key, BUCKET_LIFETIME, now],
                )
                db.execute(
                    "INSERT INTO operating_buckets (portal, auth_type, credential, method, minute,"
                    " seconds, first_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (portal,"
                    " auth_type, credential, method, minute) DO UPDATE SET"
                    " seconds = seconds + excluded.seconds",
                    [*key, int(now // 60), seconds, now],
                )
                note_control_change(db)  # every process reads the key's buckets again
                self._live.pop(key, None)
                return _budget_of(self._read_live(key, now), now)  # with this run's charge
        if live is not None:
            return _budget_of(live, now)
        return self.budget(key, now)

    def live(self, key: tuple, now: float) -> list[tuple[float, float]]:
        """The (seconds, first_at) of the key's buckets alive at `now` (at most ~11 rows), or
        alive when last read: kept while no process changed any bucket (the control version),
        and filtered again by `_budget_of` at the time it is used."""
        version = self.database.control_version()
        if version is None:  # no lock file, no version: nothing is kept
            return self._read_live(key, now)
        kept = self._live.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        rows = self._read_live(key, now)
        if len(self._live) >= LIVE_KEPT:
            self._live.clear()
        self._live[key] = (version, rows)
        return rows

    def _read_live(self, key: tuple, now: float) -> list[tuple[float, float]]:
        return self.database.db.conn.execute(
            "SELECT seconds, first_at FROM operating_buckets WHERE portal = ? AND auth_type = ?"
            " AND credential = ? AND method = ? AND first_at + ? > ? ORDER BY rowid",
            (*key, BUCKET_LIFETIME, now),
        ).fetchall()

    def budget(self, key: tuple, now: float) -> Budget:
        """Sum of the live buckets and when the oldest of them expires."""
        return _budget_of(self.live(key, now), now)


def _budget_of(live: list[tuple[float, float]], now: float) -> Budget:
    """The budget of the buckets of `live` still alive at `now`."""
    alive = [row for row in live if row[1] + BUCKET_LIFETIME > now]
    if not alive:
        return Budget(0, None)
    return Budget(round(sum(row[0] for row in alive), 6),
                  int(min(row[1] for row in alive) + BUCKET_LIFETIME))


def parse_costs(text: str) -> dict[str, float]:
    """`im.notify.personal.add=0.5,batch=0` -> {method: seconds} (simulated handler cost)."""
    costs: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, seconds = item.partition("=")
        try:
            cost = float(seconds)
        except ValueError:
            raise ValueError(f"{item!r} is not method=seconds") from None
        if not (math.isfinite(cost) and cost >= 0) or not name.strip():
            raise ValueError(f"{item!r} is not method=seconds (0 or more)")
        costs[name.strip().lower()] = cost
    return costs
