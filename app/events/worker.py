"""Delivering online events in the background: a few threads per process, queue in SQLite.

Each process that serves the emulator runs at most `THREADS` delivery threads. They start the
first time this process queues a delivery, or when the app is created and deliveries are already
waiting in the database (nothing queued before a restart is lost). A thread claims the oldest
queued delivery atomically (one UPDATE … RETURNING under the database's write lock, so several
worker processes never send one delivery twice), issues a fresh access token for the handler's
user, POSTs the form-encoded body with a timeout, and records the outcome: status, time, the
HTTP status and the first characters of the answer, both on the delivery and in the journal.

The timeout bounds the whole delivery, not each read: at the deadline a timer shuts down the
delivery's socket, so a handler that sends its headers or its answer a byte at a time (or drags
out the TLS handshake) cannot hold a delivery thread longer than the timeout, once connected.
Connecting is not bounded by that deadline: resolving the host name (getaddrinfo) has no timeout
at all, and each address the name resolves to gets a connection attempt of the full timeout, so
a slow resolver or several unreachable addresses make a delivery last longer; a socket connected
after the deadline is shut down at once.

Retries: none. A portal's queue server sends an event once; "if your server does not respond or
returns an error, the Bitrix24 queue server will log the failure but will not resend the event"
(api-reference/events/index.md, "Event Limitations"). A delivery that fails is recorded as
`failed` with the reason, which is what a test wants to see. Only a delivery whose process died
while sending it (claimed, never finished) is put back in the queue, once that process is gone.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time as walltime
import weakref

import requests
from b24emu.events import payload
from b24emu.events.hosts import allowed_hosts, check_handler_url, redact
from b24emu.events.store import DELIVERED, FAILED, RESPONSE_LIMIT
from b24emu.rest.errors import BitrixError
from b24emu.store.portals import token_hash
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger("b24emu.events")

THREADS = 2  # delivery threads per process
TIMEOUT = 10.0  # seconds a delivery may take in all (connecting, sending, the whole answer)
POLL = 0.5  # seconds an idle thread waits before looking for deliveries of other processes
ORPHAN_CHECK_EVERY = 20  # idle polls between two looks for deliveries of dead processes
_HOST = socket.gethostname()
_LIVE_WORKERS: set[str] = set()  # worker ids of this process that are running


def _process_alive(claimed_by: str | None) -> bool:
    """Whether the worker that claimed a delivery still runs (`host:pid:instance`)."""
    if not claimed_by:
        return False
    host, _, rest = claimed_by.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST:
        return True  # another machine's process: leave it be
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return claimed_by in _LIVE_WORKERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DeliveryWorker:
    """The delivery threads of one process for one emulator."""

    def __init__(self, emulator, *, threads: int = THREADS, timeout: float = TIMEOUT):
        self.emulator = emulator
        self.threads = threads
        self.timeout = timeout
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._running: list[threading.Thread] = []
        self._pid: int | None = None
        self.worker_id = ""
        self._session: requests.Session | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start this process's threads unless they run (again after a fork)."""
        with self._lock:
            if self._pid == os.getpid() and not self._stop.is_set():
                return
            self._stop = threading.Event()
            self._pid = os.getpid()
            self.worker_id = f"{_HOST}:{self._pid}:{secrets.token_hex(4)}"
            _LIVE_WORKERS.add(self.worker_id)
            self._session = _new_session()
            self._running = [
                threading.Thread(target=self._run, name=f"b24emu-events-{index}", daemon=True)
                for index in range(self.threads)]
            for thread in self._running:
                thread.start()
            atexit.register(_stop_at_exit, weakref.ref(self))
            self.emulator.events.requeue_orphans(_process_alive)

    def wake(self) -> None:
        """A delivery was queued: make sure threads run and one looks at once."""
        self.ensure_started()
        with self._wake:
            self._wake.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the threads: each finishes the delivery it is sending (bounded by its timeout)."""
        with self._lock:
            if self._pid != os.getpid() or self._stop.is_set():
                return
            self._stop.set()
            _LIVE_WORKERS.discard(self.worker_id)
            threads = list(self._running)
        with self._wake:
            self._wake.notify_all()
        deadline = walltime.monotonic() + (self.timeout + 1 if timeout is None else timeout)
        for thread in threads:
            thread.join(max(0.0, deadline - walltime.monotonic()))
        if self._session is not None:
            self._session.close()

    # --- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        stop, idle = self._stop, 0
        while not stop.is_set():
            try:
                # A read first: the claim takes the write lock, which idle threads should not.
                delivery = (self.emulator.events.claim(self.worker_id, walltime.time())
                            if self.emulator.events.has_queued() else None)
            except Exception:  # a locked or closed database: try again later
                log.exception("claiming an event delivery failed")
                delivery = None
            if delivery is None:
                idle += 1
                if idle % ORPHAN_CHECK_EVERY == 0:
                    self.emulator.events.requeue_orphans(_process_alive)
                with self._wake:
                    if not stop.is_set():
                        self._wake.wait(POLL)
                continue
            idle = 0
            try:
                self.deliver(delivery)
            except Exception:
                log.exception("event delivery %s failed unexpectedly", delivery["id"])
                try:  # recorded as failed; its tokens (if any) stay with its row until trimmed
                    self._finish(delivery, FAILED, self.emulator.clock.now(), 0.0, None, None,
                                 "internal error", delivery.get("token_hash"))
                except Exception:  # a locked or closed database: this thread goes on
                    log.exception("recording event delivery %s as failed failed",
                                  delivery["id"])

    def deliver(self, delivery: dict) -> None:
        """Send one claimed delivery and record its outcome."""
        emulator = self.emulator
        emulator.sync()  # the control API's clock
        now = emulator.clock.now()
        try:
            check_handler_url(delivery["url"], allowed_hosts(emulator.settings.event_hosts))
        except BitrixError as error:
            self._finish(delivery, FAILED, now, 0.0, None, None, error.description, None)
            return
        app = emulator.portals.app(delivery["portal"], delivery["client_id"])
        tokens = digest = None  # digest: the tokens issued for it, access then refresh
        if delivery["user_id"]:
            tokens = emulator.portals.issue_tokens(
                delivery["portal"], delivery["client_id"], delivery["user_id"], now,
                refresh=bool(delivery["refresh_token"]))
            issued = (tokens["access_token"], tokens.get("refresh_token"))
            digest = " ".join(token_hash(token) for token in issued if token)
            # They go with the delivery; _run's fallback deletes them should anything raise.
            delivery["token_hash"] = digest
        auth = payload.auth_block(
            portal=delivery["portal"], client_id=delivery["client_id"],
            application_token=(app or {}).get("application_token") or "",
            base_url=delivery["base_url"], tokens=tokens, user_id=delivery["user_id"])
        body = payload.body(event=delivery["event_name"], handler_id=delivery["handler_id"],
                            data=delivery["data"], ts=now, auth=auth)
        started = walltime.perf_counter()
        http_status, answer, error = self._post(delivery["url"], body)
        duration = walltime.perf_counter() - started
        ok = http_status is not None and 200 <= http_status < 300
        if http_status is not None and not ok:
            error = f"HTTP {http_status}"
        self._finish(delivery, DELIVERED if ok else FAILED, now, duration, http_status, answer,
                     error, digest)

    def _post(self, url: str, body: str) -> tuple[int | None, str | None, str | None]:
        """POST the body: (HTTP status, start of the answer, error) — never raises."""
        own_session = self._session is None  # not started (a direct call): closed here
        session = _new_session() if own_session else self._session
        deadline = walltime.monotonic() + self.timeout
        watch = _Deadline(self.timeout)
        _CURRENT.deadline = watch
        try:
            with session.post(url, data=body.encode("ascii"), timeout=self.timeout,
                              allow_redirects=False, stream=True,
                              headers={"Content-Type": "application/x-www-form-urlencoded",
                                       "User-Agent": "b24emu event delivery"}) as response:
                chunks, size = [], 0
                # A byte at a time: a read of more waits for all of them, each within the
                # timeout, so a trickling handler would hold this thread for minutes.
                for chunk in response.iter_content(1):
                    if walltime.monotonic() > deadline:
                        raise requests.Timeout
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= RESPONSE_LIMIT:
                        break
                text = b"".join(chunks)[:RESPONSE_LIMIT].decode("utf-8", "replace")
                if watch.expired:  # the answer was cut short at the deadline
                    raise requests.Timeout
                return response.status_code, text, None
        except requests.Timeout:
            return None, None, f"timeout after {self.timeout:g} s"
        except Exception as exc:  # a socket shut down at the deadline fails in many ways
            if watch.expired:
                return None, None, f"timeout after {self.timeout:g} s"
            if isinstance(exc, requests.ConnectionError):
                return None, None, f"connection failed: {_reason(exc)}"
            return None, None, f"request failed: {_reason(exc)}"
        finally:
            _CURRENT.deadline = None
            watch.close()
            if own_session:
                session.close()

    def _finish(self, delivery: dict, status: str, sent_at: float, duration: float,
                http_status: int | None, answer: str | None, error: str | None,
                digest: str | None) -> None:
        emulator = self.emulator
        if not emulator.events.finish(delivery["id"], status=status, sent_at=sent_at,
                                      duration=duration, http_status=http_status,
                                      response=answer, error=error, token_hash=digest):
            return  # deleted while it was sent (a reset), or ended already: nothing to journal
        url = redact(delivery["url"])
        emulator.control.record({
            "portal": delivery["portal"], "request_id": f"event-{delivery['id']}",
            "at": sent_at, "http_method": "POST", "path": url,
            "method": delivery["event_name"].lower(), "auth_type": "event",
            "credential": delivery["client_id"], "user_id": delivery["user_id"] or None,
            "client_ip": "", "status": http_status, "error": error,
            "params": {"delivery_id": delivery["id"], "event": delivery["event_name"],
                       "event_handler_id": delivery["handler_id"], "status": status,
                       "response": None if answer is None else answer[:200]},
            "duration": duration,
        })
        log.info("event %s => %s %s %s", delivery["event_name"], url, http_status or "-",
                 error or status)


class _Deadline:
    """The end of one delivery: a timer shuts down its sockets then, which ends any read or
    write blocked on them. It holds a duplicate of each socket's descriptor until `close`, so
    the shutdown always reaches this delivery's connection, never a descriptor reused since."""

    def __init__(self, seconds: float):
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        """Shut this socket down at the deadline (at once if it has passed)."""
        if sock is None:
            return
        try:
            copy = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return
        with self._lock:
            self._sockets.append(copy)
            expired = self.expired
        if expired:
            _shutdown(copy)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        """The delivery is over: no shutdown any more; the duplicates are closed."""
        self._timer.cancel()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


_CURRENT = threading.local()  # `.deadline`: the _Deadline of the delivery this thread sends


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _WatchedMixin:
    """A urllib3 connection whose socket the current delivery's deadline watches: from its
    creation (connect, TLS handshake, sending) and, for a kept-alive one, when the answer is
    read."""

    def _new_conn(self):
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def getresponse(self, *args, **kwargs):
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)


def _watch(sock) -> None:
    deadline = getattr(_CURRENT, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(_WatchedMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


def _new_session() -> requests.Session:
    """A session whose connections the delivery deadline watches, never through a proxy (the
    hosts are checked)."""
    session = requests.Session()
    session.trust_env = False
    for prefix in ("http://", "https://"):
        session.mount(prefix, _WatchedAdapter())
    return session


def _stop_at_exit(worker_ref) -> None:
    """At interpreter exit: let a delivery in flight finish (bounded by its timeout)."""
    worker = worker_ref()
    if worker is not None:
        worker.stop()


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, short."""
    cause: BaseException = error
    for _ in range(10):
        inner = cause.__cause__ or (cause.args[0] if cause.args and
                                    isinstance(cause.args[0], BaseException) else None)
        if inner is None:
            break
        cause = inner
    return str(cause)[:200]
