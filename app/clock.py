"""The emulator's clock: everything time-dependent (envelope, expiry, limits) reads one of these.

Tests pass a ManualClock and move it; the server uses SystemClock. Nothing in the emulator calls
time.time() directly, so a test never has to sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


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


# Faults and stubs may answer after a latency, in real time. One HTTP request sleeps at most this
# much in all, however many slow calls a `batch` holds (a portal cuts a request off at 60 s,
# spec B 5.3), so a batch of 50 slow calls cannot hold a thread for 50 minutes.
MAX_REQUEST_SLEEP = 60.0
_SLEPT: ContextVar[list[float] | None] = ContextVar("b24emu_request_sleep", default=None)


@contextmanager
def request_sleep_budget() -> Iterator[None]:
    """Around one HTTP request: the latencies slept inside it share `MAX_REQUEST_SLEEP`."""
    token = _SLEPT.set([0.0])
    try:
        yield
    finally:
        _SLEPT.reset(token)


def sleep_latency(seconds: float) -> float:
    """Sleep a configured latency, cut to what the request has left; the seconds slept."""
    slept = _SLEPT.get()
    if slept is None:
        slept = [0.0]  # outside a request (a direct call): its own budget
    seconds = max(0.0, min(seconds, MAX_REQUEST_SLEEP - slept[0]))
    slept[0] += seconds
    if seconds:
        _sleep(seconds)
    return seconds


_sleep = time.sleep  # the real-time wait (a test replaces it)
