"""The request-rate limit: a leaky bucket per (portal, client IP), kept in SQLite (Part A 10).

Each admitted request adds 1; the level drains at `drain` per second; a request that would take
the level above `capacity` is refused and adds nothing. The bucket is read and written in one
`BEGIN IMMEDIATE` transaction, so every worker process shares it and a restart keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.store.db import Database

# A request exactly at the boundary is admitted even when float sums of times fall a hair short.
EPSILON = 1e-9
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

    def admit(self, portal: str, client_ip: str, now: float) -> bool:
        """True (and counted) if the request fits in the bucket, else False (not counted)."""
        with self.database.write() as db:
            row = db.execute(
                "SELECT level, updated_at FROM rate_buckets WHERE portal = ? AND client_ip = ?",
                [portal, client_ip],
            ).fetchone()
            level = self.drained(row, now)
            admitted = level + 1 <= self.limit.capacity + EPSILON
            if admitted:
                level += 1
            db.execute(
                "INSERT INTO rate_buckets (portal, client_ip, level, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (portal, client_ip)"
                " DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at",
                [portal, client_ip, level, max(now, row[1]) if row else now],
            )
        return admitted

    def drained(self, row, now: float) -> float:
        """The level of a stored bucket at `now` (a clock moved back drains nothing)."""
        if row is None:
            return 0.0
        level, updated_at = row
        return max(0.0, level - self.limit.drain * max(0.0, now - updated_at))
