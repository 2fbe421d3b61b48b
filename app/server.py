"""Serving under granian: worker processes, each with an event loop and a bounded thread pool.

granian (a Rust HTTP server) parses HTTP and TLS outside Python, so a client that sends its
headers slowly or not at all holds no thread: it is cut off after `B24EMU_HEADER_TIMEOUT`
seconds. Each worker process runs `RsgiBridge`, a small app on granian's own async interface
(RSGI) in front of the Flask (WSGI) app:

- a call is read whole (at most the body limit plus one byte), within `BODY_TIMEOUT_FACTOR` ×
  `B24EMU_HEADER_TIMEOUT` seconds (else a 408 and the call is not run);
- a quick REST call runs at once on the event loop's thread: a `/rest/` call other than `batch`,
  with a body of at most `QUICK_BODY_BYTES`, while no fault or stub is stored (either may sleep
  for its latency) and no other writer holds the database (`Emulator.calls_are_quick`). It
  costs no thread hand-off, which `make bench` measured as the largest single gain;
- any other call (control API, the inbox page, `batch`, large bodies, any call while a fault or
  stub is stored or the write lock is taken) runs on a pool of `B24EMU_THREADS` threads. A call
  whose client has disconnected while it waited for a busy pool's thread is dropped before it
  runs, so a client that retries after a timeout never creates a duplicate;
- the inbox page's event stream (`/_emulator/ui/events`) is checked by the Flask view (access,
  portal, recipient) and then streamed by a coroutine of the worker's event loop: an open page
  costs no thread (`b24emu.control.ui.stream_async`);
- SIGTERM/SIGINT: granian stops accepting, the open event streams end at once, in-flight calls
  finish, then the worker exits.

Several workers share one SQLite file; each opens its own connections after it starts. Each
worker is pinned to one CPU, the workers spread out (`b24emu.affinity`, `B24EMU_PIN_WORKERS`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from b24emu.affinity import pin_worker
from b24emu.settings import Settings

HEADER_BUFFER_BYTES = 64 * 1024   # what granian buffers per connection for a request head
# Refused with a Bitrix-shaped JSON answer before the app runs. Beyond granian's own limits (a
# head over HEADER_BUFFER_BYTES or over 100 header lines) granian answers an empty 431 itself.
MAX_URL_BYTES = 32 * 1024
MAX_HEADER_BYTES = 16 * 1024      # one header line
MAX_HEADERS_TOTAL_BYTES = 48 * 1024
MAX_HEADER_COUNT = 90
BODY_TIMEOUT_FACTOR = 6  # a body must arrive whole within this × B24EMU_HEADER_TIMEOUT (408)
QUICK_BODY_BYTES = 64 * 1024  # a REST call with a larger body runs on the pool
SETTINGS_ENV = "B24EMU_SERVE_SETTINGS"  # the parent's settings, handed to the workers
STREAM_KEY = "b24emu.stream_handoff"  # environ key: the event-stream view hands its watcher over
log = logging.getLogger("b24emu")
_STAYS = threading.Event()  # never set: the `gone` of a call run at once on the event loop
_EARLY_SIGNALS: list[int] = []


class RsgiBridge:
    """granian's RSGI in front of the WSGI app: async I/O; quick REST calls on the event loop,
    every other call on a bounded pool of threads (see the module's doc).

    RSGI (granian's own interface) rather than ASGI: a call crosses between granian's Rust
    threads and the event loop once each way instead of once per ASGI message; for a bare
    Flask app that was about twice the calls per second at one connection.
    """

    def __init__(self, wsgi_app, threads: int, max_body_bytes: int, quick=lambda: False,
                 body_timeout: float = 60.0):
        self.app = wsgi_app
        self.body_timeout = body_timeout
        self.quick = quick
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(max_workers=self.threads,
                                       thread_name_prefix="b24emu-call")
        self.max_body_bytes = max_body_bytes
        self.running = 0  # calls handed to the pool and not yet answered (event loop only)
        self.quick_failures = 0  # failed quick-call checks (only the first is logged)

    def __rsgi_init__(self, loop) -> None:
        _end_streams_on_signals(loop)

    def __rsgi_del__(self, loop) -> None:
        from b24emu.control.ui import SHUTTING_DOWN

        SHUTTING_DOWN.set()
        self.pool.shutdown(wait=True)

    async def __rsgi__(self, scope, proto) -> None:
        if scope.proto != "http":
            return
        headers = scope.headers.items()
        refusal = head_refusal(scope.path, scope.query_string, headers)
        if refusal is not None:
            status, answer_headers, body = refusal
            proto.response_bytes(status, answer_headers, body)
            return
        try:
            # A deadline on this task, not `wait_for`: that one wraps the read in a task of its
            # own, one more task and one more turn of the event loop for every call.
            async with asyncio.timeout(self.body_timeout):
                body, more, left = await _read_body(proto, scope.headers, self.max_body_bytes)
        except TimeoutError:
            from b24emu.rest import errors

            status, answer_headers, body = _refusal(
                scope.path, errors.body_timeout(self.body_timeout))
            proto.response_bytes(status, answer_headers, body)
            return
        if left:
            return  # the client went away before its request was whole: nothing to run
        environ = wsgi_environ(scope, headers, body, more)
        handed: list = []
        environ[STREAM_KEY] = handed.append
        if self._quick(scope.path, body, more):
            gone = _STAYS  # it runs now: its client cannot have left before it starts
            answer = _call_wsgi(self.app, environ, gone)
        else:
            gone = threading.Event()
            watch = None
            if self.running >= self.threads:
                # It has to wait for a thread: if its client leaves meanwhile, it is not run.
                watch = asyncio.ensure_future(_disconnected(proto, gone))
            self.running += 1
            try:
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.pool, _call_wsgi, self.app, environ, gone)
            finally:
                self.running -= 1
                if watch is not None:
                    watch.cancel()
        try:
            if answer is None:
                return  # the client left before its call ran: nothing was done, nothing to say
            status, answer_headers, chunks = answer
            if handed and status == 200:
                from b24emu.control.ui import stream_async

                if gone is _STAYS:
                    gone = threading.Event()
                answer_headers = [(name, value) for name, value in answer_headers
                                  if name.lower() != "content-length"]
                transport = proto.response_stream(status, answer_headers)
                watch = asyncio.ensure_future(_disconnected(proto, gone))
                try:
                    await stream_async(handed[0], transport.send_bytes, gone)
                finally:
                    watch.cancel()
                return
            proto.response_bytes(status, answer_headers, b"".join(chunks))
        finally:
            for watcher in handed:
                watcher.close()

    def _quick(self, path: str, body: bytes, more: bool) -> bool:
        """Whether a call runs on the event loop's thread rather than the pool: a REST call (not
        a batch) with a small body, while nothing would make it wait (`quick`)."""
        if more or len(body) > QUICK_BODY_BYTES or not path.startswith("/rest/"):
            return False
        method = path.rstrip("/").rpartition("/")[2].lower()  # as parse_rest_path reads it
        if method.startswith("batch"):
            return False
        try:
            return self.quick()
        except Exception:  # noqa: BLE001 (e.g. the database busy: the pool's call answers it)
            # With its traceback once per worker; a cause that lasts (an unreadable lock
            # file) must not write a traceback for every call of an hour's load.
            self.quick_failures += 1
            if self.quick_failures == 1:
                log.warning("quick-call check failed; such calls run on the pool (logged"
                            " once)", exc_info=True)
            return False


def head_refusal(path: str, query_string: str, headers) -> tuple[int, list, bytes] | None:
    """The answer (XML for a /rest/ URL ending in .xml, as every other REST refusal) for a
    request line or headers over the limits, else None."""
    from b24emu.rest import errors

    url = len(path.encode("utf-8", "surrogateescape")) + len(query_string)
    sizes = [len(name) + len(value) + 4 for name, value in headers]
    if url > MAX_URL_BYTES:
        error = errors.uri_too_long(MAX_URL_BYTES)
    elif len(sizes) > MAX_HEADER_COUNT:
        error = errors.headers_too_large(f"More than {MAX_HEADER_COUNT} request headers")
    elif sizes and max(sizes) > MAX_HEADER_BYTES:
        error = errors.headers_too_large(f"A request header is longer than {MAX_HEADER_BYTES}"
                                         " bytes")
    elif sum(sizes) > MAX_HEADERS_TOTAL_BYTES:
        error = errors.headers_too_large(f"Request headers are larger than"
                                         f" {MAX_HEADERS_TOTAL_BYTES} bytes")
    else:
        return None
    return _refusal(path, error)


def _refusal(path: str, error) -> tuple[int, list, bytes]:
    """A refusal before the app runs, in the URL's transport (XML for a /rest/ `.xml` URL)."""
    from b24emu.rest import envelope, routes

    transport = routes.transport_hint(path) if path.startswith(routes.PREFIX) else "json"
    body, status, answer_headers = envelope.error_response(error, transport)
    return status, list(answer_headers.items()), body



async def _read_body(proto, headers, limit: int) -> tuple[bytes, bool, bool]:
    """The request body: (body, it is over `limit`, the client left before it was whole).

    At most `limit + 1` bytes are ever held. A body with a Content-Length within the limit is
    read whole by granian, which alone tells a complete body from one cut short by a disconnect
    (then it is not run). Any other body (chunked, or declared over the limit) is read chunk by
    chunk and counted; granian's chunk iterator ends a chunked body cut short by a disconnect as
    it ends a complete one, so such a body runs with what arrived (README, Limits).
    """
    from granian.rsgi import ProtocolClosed, ProtocolError

    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= limit:
        try:
            return await proto(), False, False
        except (ProtocolClosed, ProtocolError):
            return b"", False, True
    parts, size = [], 0
    async for chunk in proto:
        parts.append(chunk[: limit + 1 - size])
        size += len(parts[-1])
        if size > limit:
            return b"".join(parts), True, False
    return b"".join(parts), False, False


async def _disconnected(proto, gone: threading.Event) -> None:
    """Set `gone` when the client closes the connection."""
    await proto.client_disconnect()
    gone.set()


def wsgi_environ(scope, headers, body: bytes, truncated: bool) -> dict:
    """The WSGI environ of an RSGI request whose body was read (PEP 3333)."""
    server_name, _, server_port = scope.server.rpartition(":")
    client_addr, _, client_port = scope.client.rpartition(":")
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_name.strip("[]") or "127.0.0.1",
        "SERVER_PORT": server_port or "80",
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client_addr.strip("[]"),
        "REMOTE_PORT": client_port,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, value in headers:
        name = raw_name.upper().replace("-", "_")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name
        if key in environ:
            value = environ[key] + "," + value
        environ[key] = value
    # The whole body is read: its length is known whatever the framing was (chunked or not),
    # and one byte past the limit makes the app refuse it as too large.
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    if body or truncated:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _call_wsgi(app, environ: dict, gone: threading.Event):
    """Run the WSGI app in a pool thread: (status, headers, body chunks), or None if the client
    has gone away before the call got a thread."""
    if gone.is_set():
        return None
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = headers
        return lambda data: answer.setdefault("written", []).append(data)

    result = app(environ, start_response)
    try:
        chunks = answer.get("written", []) + list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], chunks


def _end_streams_on_signals(loop) -> None:
    """Chain onto the worker's SIGTERM/SIGINT handlers: open event streams end at once.

    granian ends a worker after its open connections; an inbox page's stream would otherwise
    hold the stop until it ends by itself.
    """
    from b24emu.control.ui import SHUTTING_DOWN

    for number in _EARLY_SIGNALS[:1]:
        loop.call_later(0.1, os.kill, os.getpid(), number)  # granian's handlers are in place
    handlers = getattr(loop, "_signal_handlers", {})
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = handlers.get(number)
        if previous is None:
            continue

        def chained(previous=previous):
            SHUTTING_DOWN.set()
            previous._run()

        loop.add_signal_handler(number, chained)


def rsgi_app() -> RsgiBridge:
    """The worker's app (granian's factory): settings from the parent, a migrated database."""
    # A stop signal that arrives while this worker still loads would hit the handler inherited
    # from the main process and be lost; it is kept and delivered again once the worker serves.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda number, frame: _EARLY_SIGNALS.append(number))
    from b24emu import create_app

    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings(**_json_loads(raw)) if raw else Settings.from_env()
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        level=logging.WARNING)
    app = create_app(settings, seed=False)
    emulator = app.extensions["b24emu"]
    emulator.database.start_checkpointer(wal_limit=settings.wal_limit_bytes)
    if settings.pin_workers:
        # After the checkpoint thread started (it stays free), before granian's runtime
        # threads do (they inherit the pin).
        pin_worker(emulator.database.locked())
    return RsgiBridge(app, settings.threads, settings.max_body_bytes,
                      quick=emulator.calls_are_quick,
                      body_timeout=settings.header_timeout * BODY_TIMEOUT_FACTOR)


def _json_loads(text: str) -> dict:
    import json

    return json.loads(text)


def granian_server(settings: Settings, tls_files=None):
    """The granian server `b24emu serve` runs (not started)."""
    import json

    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    options = {}
    if tls_files is not None:
        options.update(ssl_cert=tls_files.cert, ssl_key=tls_files.key)
    return Server(
        "b24emu.server:rsgi_app", address=settings.host, port=settings.port,
        interface=Interfaces.RSGI, factory=True, workers=settings.workers, loop=Loops.asyncio,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.header_timeout * 1000),
                                     max_buffer_size=HEADER_BUFFER_BYTES),
        log_level=LogLevels.warning, log_access=False, websockets=False,
        workers_kill_timeout=30, **options)


def run_server(settings: Settings, tls_files=None) -> None:
    """Serve until stopped (SIGTERM or Ctrl-C lets in-flight requests finish)."""
    granian_server(settings, tls_files).serve()


