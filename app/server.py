"""Serving under granian: worker processes with an async HTTP front and a bounded thread pool.

granian (a Rust HTTP server) parses HTTP and TLS outside Python, so a client that sends its
headers slowly or not at all holds no thread: it is cut off after `B24EMU_HEADER_TIMEOUT`
seconds. Each worker process runs `AsgiBridge`, a small ASGI app in front of the Flask (WSGI) app:

- a REST or control call is read whole (at most the body limit plus one byte), then run by the
  Flask app on a pool of `B24EMU_THREADS` threads. A call whose client has disconnected while it
  waited for a thread is dropped before it runs, so a client that retries after a timeout never
  creates a duplicate;
- the inbox page's event stream (`/_emulator/ui/events`) is checked by the Flask view (access,
  portal, recipient) and then streamed by a coroutine of the worker's event loop: an open page
  costs no thread (`b24emu.control.ui.stream_async`);
- SIGTERM/SIGINT: granian stops accepting, the open event streams end at once, in-flight calls
  finish, then the worker exits.

Several workers share one SQLite file; each opens its own connections after it starts.
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

from b24emu.settings import Settings

HEADER_BUFFER_BYTES = 64 * 1024   # what granian buffers per connection for a request head
# Refused with a Bitrix-shaped JSON answer before the app runs. Beyond granian's own limits (a
# head over HEADER_BUFFER_BYTES or over 100 header lines) granian answers an empty 431 itself.
MAX_URL_BYTES = 32 * 1024
MAX_HEADER_BYTES = 16 * 1024      # one header line
MAX_HEADERS_TOTAL_BYTES = 48 * 1024
MAX_HEADER_COUNT = 90
SETTINGS_ENV = "B24EMU_SERVE_SETTINGS"  # the parent's settings, handed to the workers
STREAM_KEY = "b24emu.stream_handoff"  # environ key: the event-stream view hands its watcher over
log = logging.getLogger("b24emu")
_EARLY_SIGNALS: list[int] = []


class AsgiBridge:
    """ASGI in front of the WSGI app: async I/O, the app on a bounded pool of threads."""

    def __init__(self, wsgi_app, threads: int, max_body_bytes: int):
        self.app = wsgi_app
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads),
                                       thread_name_prefix="b24emu-call")
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _end_streams_on_signals(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from b24emu.control.ui import SHUTTING_DOWN

                SHUTTING_DOWN.set()
                self.pool.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        refusal = head_refusal(scope)
        if refusal is not None:
            status, headers, body = refusal
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        body, more, left = await _read_body(receive, self.max_body_bytes)
        if left:
            return  # the client went away before its request was whole: nothing to run
        environ = wsgi_environ(scope, body, more)
        gone = threading.Event()
        watch = None
        if not more:
            watch = asyncio.ensure_future(_disconnected(receive, gone))
        handed = []
        environ[STREAM_KEY] = handed.append
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(self.pool, _call_wsgi, self.app, environ, gone)
            if answer is None:
                return  # the client left before its call ran: nothing was done, nothing to say
            status, headers, chunks = answer
            if handed and status == 200:
                from b24emu.control.ui import stream_async

                headers = [(name, value) for name, value in headers if name != b"content-length"]
                await send({"type": "http.response.start", "status": status,
                            "headers": headers})
                await stream_async(handed[0], send, gone)
                return
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"".join(chunks)})
        finally:
            if watch is not None:
                watch.cancel()
            for watcher in handed:
                watcher.close()


def head_refusal(scope) -> tuple[int, list, bytes] | None:
    """The answer (XML for a /rest/ URL ending in .xml, as every other REST refusal) for a
    request line or headers over the limits, else None."""
    from b24emu.rest import envelope, errors, routes

    url = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    sizes = [len(name) + len(value) + 4 for name, value in scope["headers"]]
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
    path = scope.get("path") or ""
    transport = routes.transport_hint(path) if path.startswith(routes.PREFIX) else "json"
    body, status, headers = envelope.error_response(error, transport)
    return status, _asgi_headers(headers.items()), body


def _asgi_headers(pairs) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


async def _read_body(receive, limit: int) -> tuple[bytes, bool, bool]:
    """The request body, at most `limit + 1` bytes: (body, more was left unread, client gone)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), False, True  # http.disconnect: the client has gone
        chunk = message.get("body", b"")
        if size + len(chunk) > limit:
            parts.append(chunk[: limit + 1 - size])
            return b"".join(parts), True, False
        parts.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), False, False


async def _disconnected(receive, gone: threading.Event) -> None:
    """Set `gone` when the client closes the connection (ASGI `http.disconnect`)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


def wsgi_environ(scope, body: bytes, truncated: bool) -> dict:
    """The WSGI environ of an ASGI request whose body was read (PEP 3333)."""
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0] or "",
        "REMOTE_PORT": str(client[1] or ""),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = name
        else:
            key = "HTTP_" + name
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
        answer["headers"] = _asgi_headers(headers)
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


def asgi_app() -> AsgiBridge:
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
    app.extensions["b24emu"].database.start_checkpointer(wal_limit=settings.wal_limit_bytes)
    return AsgiBridge(app, settings.threads, settings.max_body_bytes)


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
        "b24emu.server:asgi_app", address=settings.host, port=settings.port,
        interface=Interfaces.ASGI, factory=True, workers=settings.workers, loop=Loops.asyncio,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.header_timeout * 1000),
                                     max_buffer_size=HEADER_BUFFER_BYTES),
        log_level=LogLevels.warning, log_access=False, websockets=False,
        workers_kill_timeout=30, **options)


def run_server(settings: Settings, tls_files=None) -> None:
    """Serve until stopped (SIGTERM or Ctrl-C lets in-flight requests finish)."""
    granian_server(settings, tls_files).serve()


