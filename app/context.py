"""The running emulator: settings, clock, database and stores, shared by every request."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from b24emu.clock import ControlledClock, SystemClock
from b24emu.events.store import EventStore
from b24emu.events.worker import DeliveryWorker
from b24emu.methods import REGISTRY
from b24emu.methods.registry import Registry
from b24emu.settings import ConfigError, Settings
from b24emu.store.control import ControlStore
from b24emu.store.db import Database
from b24emu.store.fixtures import load_fixture_file
from b24emu.store.limits import OperatingLimiter, RateLimiter, parse_costs, rate_limit_for
from b24emu.store.notifications import NotificationStore
from b24emu.store.portals import DEFAULT_PORTAL, PortalStore
from b24emu.stubs.store import StubStore

log = logging.getLogger("b24emu")
PACKAGED_DEFAULT_FIXTURE = Path(__file__).parent / "testing" / "default.json"
# How long a REST call's check may wait for another writer (another worker's call, usually well
# under a millisecond) to let the write lock go before the call is sent to the pool instead.
# Waiting on the event loop's thread costs less than the hand-off: at 10 connections `make
# bench` measured about a third more calls per second than with no wait.
QUICK_LOCK_WAIT = 0.005


@dataclass
class Emulator:
    """Everything a request handler may use."""

    settings: Settings
    clock: object
    database: Database
    portals: PortalStore
    notifications: NotificationStore
    registry: Registry
    zone: ZoneInfo
    rate_limiter: RateLimiter | None = None
    operating: OperatingLimiter | None = None
    control: ControlStore | None = None
    stubs: StubStore | None = None
    events: EventStore | None = None  # event handlers, delivery and offline queues
    deliveries: DeliveryWorker | None = None  # this process's event delivery threads
    # What `calls_are_quick` read, per thread: only the thread that read it uses or drops it (a
    # pool thread's `sync` must not take the event loop's away).
    _prefetched: threading.local = field(default_factory=threading.local)

    @classmethod
    def open(cls, settings: Settings, clock=None, *, seed: bool = True) -> Emulator:
        """Open (and migrate) the database; load the fixtures into an empty one."""
        database = Database(settings.db)
        database.migrate()
        emulator = cls(settings, ControlledClock(clock or SystemClock()), database,
                       PortalStore(database), NotificationStore(database), REGISTRY,
                       portal_zone(settings.timezone))
        emulator.control = ControlStore(database, settings.journal_max)
        emulator.stubs = StubStore(database)
        emulator.events = EventStore(database)
        emulator.deliveries = DeliveryWorker(emulator)
        try:
            limit = rate_limit_for(settings.rate_limit, settings.rate_capacity, settings.rate_drain)
        except ValueError as error:
            raise ConfigError(f"B24EMU_RATE_LIMIT: {error}") from None
        emulator.rate_limiter = RateLimiter(database, limit) if limit else None
        try:
            costs = parse_costs(settings.operating_costs)
        except ValueError as error:
            raise ConfigError(f"B24EMU_OPERATING_COSTS: {error}") from None
        emulator.operating = OperatingLimiter(database, settings.operating_limit, costs)
        if seed and settings.fixtures and emulator.portals.is_empty():
            emulator.seed(fixture_path(settings.fixtures))
        return emulator

    def seed(self, path: str | Path) -> dict:
        """Load a fixture file (replacing the portal it describes)."""
        portal = load_fixture_file(path)
        self.portals.load(portal)
        log.info("loaded portal %r from %s", portal["name"], path)
        return portal

    def portal_for_host(self, host: str | None) -> str:
        """The portal whose domain is the request's host name (port ignored); else the default.

        127.0.0.1, localhost and any host no portal claims select the default portal.
        """
        name = (host or "").strip().lower()
        if name.startswith("["):
            name = name.partition("]")[0][1:]
        else:
            name = name.rpartition(":")[0] if name.count(":") == 1 else name
        if not name or name in ("localhost", "127.0.0.1", "::1"):
            return DEFAULT_PORTAL
        rows = self.database.query(
            "SELECT name FROM portals WHERE lower(domain) = ? ORDER BY name LIMIT 1", (name,))
        return rows[0]["name"] if rows else DEFAULT_PORTAL

    def calls_are_quick(self) -> bool:
        """Whether a REST call would now run without waiting on purpose or on another writer:
        no fault or stub stored (either may sleep for its latency) and the write lock free, or
        let go within `QUICK_LOCK_WAIT` seconds. The serving layer runs such a call on its event
        loop's thread, next, and any other on its pool (`b24emu.server`). The control state
        read here is the one that call's `sync` uses, so a fault armed by another process is
        never missed."""
        snapshot = self.control.snapshot()
        if snapshot.faults_armed or snapshot.stubs_stored:
            self._prefetched.snapshot = None
            return False
        self._prefetched.snapshot = snapshot
        return self.database.write_lock_free(wait=QUICK_LOCK_WAIT)

    def sync(self):
        """Load the shared control state (clock, armed faults) at the start of a request."""
        local = self._prefetched
        snapshot, local.snapshot = getattr(local, "snapshot", None), None
        if snapshot is None:
            snapshot = self.control.snapshot()
        self.portals.check_version(snapshot.portals_version)
        self.clock.apply(snapshot.clock.frozen_at, snapshot.clock.offset)
        return snapshot


def fixture_path(path: str) -> Path:
    """A fixture file; the default one falls back to the copy shipped inside the package."""
    given = Path(path)
    if not given.exists() and path == Settings.fixtures:
        return PACKAGED_DEFAULT_FIXTURE  # an installed b24emu run outside a checkout
    return given


def portal_zone(name: str) -> ZoneInfo:
    """The portal's time zone; a clear error for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"B24EMU_TIMEZONE: unknown time zone {name!r}") from None
