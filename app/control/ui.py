"""The inbox page under `/_emulator/ui/`: a portal user's notifications, live.

The page (templates/inbox.html, static/inbox.js, static/inbox.css) reads everything through the
control API (`/_emulator/portals`, `/_emulator/notifications`, `/_emulator/journal`) and listens
to `GET /_emulator/ui/events`, a Server-Sent Events stream of what changed for one recipient.

Several worker processes share one SQLite file, so the stream cannot wait for an in-process
signal: it keeps a connection of its own and looks every `TICK_SECONDS` whether any connection
committed (`PRAGMA data_version`, no table read). Only then it reads the recipient's ids and read
flags, and sends the difference to what it saw before:

    event: ready     data: {"portal": "default", "recipient": 2}     (first, after the baseline)
    event: added     data: {"ids": [12, 13]}
    event: deleted   data: {"ids": [7]}
    event: read      data: {"ids": [12], "read": true}

plus a `: heartbeat` comment every `HEARTBEAT_SECONDS`. The stream ends when the client goes
away, after `LIFETIME_SECONDS`, or when the worker process stops, so open pages never hold up a
shutdown; EventSource then reconnects and the page reloads its list on the new `ready`.

Under `b24emu serve` the view only checks the request and hands its watcher to the server, which
streams it from a coroutine (`stream_async`): an open page holds no thread. Under a plain WSGI
server (the pytest plugin's) the view's generator `_stream` is the body and holds a thread
while the page is open. A worker serves at most `MAX_OPEN_STREAMS` pages at once (each holds an
SQLite connection and re-reads its recipient's newest rows after a commit); past that a page
gets a 503, shows "offline" (a browser's EventSource does not retry after an error status) and
connects again when reloaded.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import sqlite3
import threading
import time

from b24emu.control.access import check_access
from b24emu.control.schemas import ControlError, selected_portal
from flask import Blueprint, Response, current_app, jsonify, render_template, request

bp = Blueprint("ui", __name__, url_prefix="/_emulator/ui", template_folder="templates",
               static_folder="static")
bp.before_request(check_access)

TICK_SECONDS = 0.3
LIST_LIMIT = 200  # notifications the page lists (inbox.js LIST_LIMIT)
WATCH_WINDOW = 500  # newest notifications a page's stream compares: more than the page lists
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0
RETRY_MILLISECONDS = 2000
MAX_OPEN_STREAMS = 256  # open inbox pages per worker process (each holds an SQLite connection)
SHUTTING_DOWN = threading.Event()  # set when this worker process begins to stop


@bp.get("/")
def inbox():
    """The inbox page; with `?token=` the page carries the token to its assets and API calls."""
    response = Response(render_template(
        "inbox.html", token=request.args.get("token", ""), api=f"{request.script_root}/_emulator"))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' http: https:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/events")
def events():
    """Server-Sent Events: what changes among one recipient's notifications."""
    emulator = current_app.extensions["b24emu"]
    try:
        portal = selected_portal()
    except ControlError as error:
        return error.response()
    recipient = request.args.get("recipient", "")
    valid = recipient.isascii() and recipient.isdigit() and len(recipient) <= 18
    if not valid or int(recipient) < 1:
        return _error(400, "invalid_recipient", "recipient must be a user id (an integer >= 1)")
    try:
        watcher = RecipientWatcher(emulator.database.path, portal, int(recipient))
    except TooManyStreams:
        return _error(503, "too_many_streams",
                      f"{MAX_OPEN_STREAMS} inbox pages are open on this worker already")
    handoff = request.environ.get("b24emu.stream_handoff")
    if handoff is not None:
        handoff(watcher)  # the async server streams it from its event loop (`stream_async`)
        body = None
    else:
        # werkzeug's server (the pytest plugin's) hands over the client's socket: a closed
        # page then frees its thread at the next tick, not at the next heartbeat's write.
        body = _stream(watcher, request.environ.get("werkzeug.socket"))
    response = Response(body, mimetype="text/event-stream")
    if body is not None:
        # A body that never starts (a HEAD request, a client gone before the first byte) does
        # not run the generator's `finally`: the watcher's place is given back when the server
        # closes the response, whatever happened (closing twice counts once).
        response.call_on_close(watcher.close)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


class TooManyStreams(Exception):
    """`MAX_OPEN_STREAMS` watchers are open in this process."""


class RecipientWatcher:
    """One recipient's notification ids and read flags, seen through a connection of its own.
    At most `MAX_OPEN_STREAMS` are open in a process at once."""

    _open = 0
    _open_lock = threading.Lock()

    def __init__(self, path: str, portal: str, recipient_id: int):
        with RecipientWatcher._open_lock:
            if RecipientWatcher._open >= MAX_OPEN_STREAMS:
                raise TooManyStreams()
            RecipientWatcher._open += 1
        self.closed = False
        self.portal, self.recipient_id = portal, recipient_id
        self.conn = None
        try:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                        check_same_thread=False)
            self.version = None
            self.known = self._read_state()
        except BaseException:
            self.close()
            raise

    def _data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def _read_state(self) -> dict[int, bool]:
        """The newest `WATCH_WINDOW` notifications (an index range, whatever the recipient
        holds): the page lists at most `LIST_LIMIT` of them."""
        self.version = self._data_version()
        rows = self.conn.execute(
            "SELECT id, is_read FROM notifications WHERE portal = ? AND recipient_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (self.portal, self.recipient_id, WATCH_WINDOW)).fetchall()
        return {row[0]: bool(row[1]) for row in rows}

    def changed(self) -> bool:
        """True when some connection committed since the last look (one cheap PRAGMA)."""
        return self._data_version() != self.version

    def changes(self) -> list[tuple[str, dict]]:
        """The events since the last look: nothing at all when no connection committed."""
        if self._data_version() == self.version:
            return []
        state = self._read_state()
        before, self.known = self.known, state
        newest_before = max(before, default=0)
        # Ids only grow: an id new to the window but older than what was seen slid in from
        # below (a newer one was deleted), and one that left the window from below when the
        # window is full was pushed out, not deleted.
        oldest_kept = min(state) if len(state) >= WATCH_WINDOW else 0
        added = sorted(key for key in state if key not in before and key > newest_before)
        deleted = sorted(key for key in before if key not in state and key >= oldest_kept)
        flipped = [key for key in state if key in before and state[key] != before[key]]
        found = []
        if deleted:
            found.append(("deleted", {"ids": deleted}))
        if added:
            found.append(("added", {"ids": added}))
        for read in (True, False):
            ids = sorted(key for key in flipped if state[key] is read)
            if ids:
                found.append(("read", {"ids": ids, "read": read}))
        return found

    def close(self) -> None:
        with RecipientWatcher._open_lock:
            if self.closed:
                return
            self.closed = True
            RecipientWatcher._open -= 1
        if self.conn is not None:
            self.conn.close()


def _stream(watcher: RecipientWatcher, client, *, clock=time.monotonic, sleep=time.sleep):
    """The event stream's body: runs until the client leaves or the lifetime is over."""
    try:
        yield _event("ready", {"portal": watcher.portal, "recipient": watcher.recipient_id},
                     retry=RETRY_MILLISECONDS)
        started = last_sent = clock()
        while clock() - started < LIFETIME_SECONDS:
            sleep(TICK_SECONDS)
            if SHUTTING_DOWN.is_set() or _client_gone(client):
                return
            for name, data in watcher.changes():
                yield _event(name, data)
                last_sent = clock()
            if clock() - last_sent >= HEARTBEAT_SECONDS:
                yield ": heartbeat\n\n"
                last_sent = clock()
    finally:
        watcher.close()


async def stream_async(watcher: RecipientWatcher, send_bytes, gone, *, clock=time.monotonic,
                       sleep=asyncio.sleep) -> None:
    """The event stream served by a coroutine (`send_bytes`, the server's stream transport): no
    thread is held while it waits; the stream ends when this returns.

    `gone` (a threading.Event) is set when the client disconnects. The recipient's rows are read
    on a thread only when some connection committed.
    """
    loop = asyncio.get_running_loop()

    async def emit(text: str) -> None:
        await send_bytes(text.encode())

    try:
        await emit(_event("ready", {"portal": watcher.portal, "recipient": watcher.recipient_id},
                          retry=RETRY_MILLISECONDS))
        started = last_sent = clock()
        while clock() - started < LIFETIME_SECONDS:
            await sleep(TICK_SECONDS)
            if SHUTTING_DOWN.is_set() or gone.is_set():
                break
            if watcher.changed():
                for name, data in await loop.run_in_executor(None, watcher.changes):
                    await emit(_event(name, data))
                    last_sent = clock()
            if clock() - last_sent >= HEARTBEAT_SECONDS:
                await emit(": heartbeat\n\n")
                last_sent = clock()
    except (OSError, RuntimeError):
        pass  # the client went away mid-write (granian raises a RuntimeError then)
    finally:
        watcher.close()


def _event(name: str, data: dict, *, retry: int | None = None) -> str:
    head = f"retry: {retry}\n" if retry is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _client_gone(client) -> bool:
    """True when the browser closed the connection (a plain socket reads EOF on a peek).

    An EventSource sends nothing after its request, so a readable socket that peeks no bytes is
    closed. TLS sockets cannot peek; there the next heartbeat's failed write ends the stream.
    """
    if not isinstance(client, socket.socket) or hasattr(client, "context"):
        return False
    try:
        # poll, not select: select() refuses a descriptor numbered 1024 or more, and a busy
        # worker (or a long test run) has such descriptors; every stream then looked closed.
        poller = select.poll()
        poller.register(client, select.POLLIN)
        readable = poller.poll(0)
        return bool(readable) and client.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _error(status: int, code: str, description: str):
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    return response
