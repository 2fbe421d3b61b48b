"""The emulator's clock: everything time-dependent (envelope, expiry, limits) reads one of these.

Tests pass a ManualClock and move it; the server uses SystemClock. Nothing in the emulator calls
time.time() directly, so a test never has to sleep.
"""

from __future__ import annotations

import threading
import time


class SystemClock:
    """Wall-clock time, as a portal sees it."""

    def now(self) -> float:
        """Seconds since the Unix epoch, as a float (PHP microtime(true))."""
        return time.time()


class ManualClock:
    """A clock that moves only when told to: exact, repeatable tests."""

    def __init__(self, start: float = 1_767_225_600.0):  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current (frozen) time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` and return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        """Jump to an absolute time."""
        with self._lock:
            self._now = float(when)


class ControlledClock:
    """The emulator's clock: a base clock, frozen or shifted through the control API.

    The state is kept in the database (`b24emu.store.control`) so every worker agrees; each request
    loads it once with `apply`, and `now()` never touches the database.
    """

    def __init__(self, base):
        self.base = base
        self._frozen_at: float | None = None
        self._offset = 0.0

    def apply(self, frozen_at: float | None, offset: float) -> None:
        """Take the stored state (frozen instant, or offset from the base clock)."""
        self._frozen_at, self._offset = frozen_at, offset

    @property
    def frozen(self) -> bool:
        """True while the clock stands still."""
        return self._frozen_at is not None

    @property
    def offset(self) -> float:
        """Seconds added to the base clock while running."""
        return self._offset

    def now(self) -> float:
        """The emulator's current time."""
        frozen_at = self._frozen_at
        return frozen_at if frozen_at is not None else self.base.now() + self._offset
