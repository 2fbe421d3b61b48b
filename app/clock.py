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
