"""`b24emu record`: a proxy between a client and a real portal that writes down every call.

The client calls the proxy as it would call the portal (`http://127.0.0.1:8080/rest/<method>`,
or with any `/rest/<user>/<code>/` in front); the proxy forwards the query and body as the client
sent them to the upstream webhook URL (for OAuth, to the upstream's `/rest/` with
`--upstream-token` as `auth`, the client's own `auth`/`access_token` left out), returns the
upstream's answer unchanged (status, content type, body; a redirect's `Location` with the
webhook code masked) and appends the pair to the recording, credentials removed and masked
(`b24emu.record.recording`): one line per call, so the file is a complete recording after every
call and a save costs one line, not the whole file.

The recording never costs the client its answer: once the file is full (`MAX_CALLS`,
`MAX_RECORDING_BYTES`) no call is even prepared for it, and a failed write (disk full) or an
entry that cannot be built stops the recording, logged once, while calls are still forwarded.
At most `MAX_RECORDING_AT_ONCE` entries are built at the same time (each holds a copy of its
answer); a call beyond that waits its turn before its answer is sent, so every call is recorded
and memory holds a few answers, not one per client.
The file is opened only once the proxy listens, so a busy port leaves an existing file as it was.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from b24emu.record import recording as rec
from b24emu.rest import redact
from b24emu.rest.routes import parse_rest_path
from b24emu.urls import masked as masked_url
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger("b24emu.record")
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a larger upstream answer is 502, not forwarded
MAX_CALLS = 5000  # calls kept in one recording; later calls are forwarded, not written
MAX_RECORDING_BYTES = 256 * 1024 * 1024  # the file stops growing here; calls still forwarded
MAX_FORM_PARTS = 1000
MAX_RECORDING_AT_ONCE = 2  # calls prepared for the file at the same time (each holds its answer)
HANDLER_TIMEOUT = 30.0  # seconds a client connection may stay silent (idle keep-alive included)
LOGGERS = ("b24emu.record", "werkzeug", "b24emu")  # each gets the credential-masking filter
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "User-Agent", "Accept-Language")
DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding",
                                      "content-encoding", "content-length", "set-cookie",
                                      "server", "date", "proxy-authenticate", "upgrade"})
_QUERY_SAFE = "!#$%&'()*+,/:;=?@[]~"  # a query's bytes as sent; raw non-ASCII bytes %-encoded


def _browser_refusal(request) -> tuple[str, str] | None:
    """Why a request must not reach the real portal, or None.

    The proxy holds the real portal's credentials, so a web page open in the user's browser must
    not be able to drive it: a request a browser marks as coming from a page (`Origin`, or a
    cross-site `Sec-Fetch-Site`) is refused, and so is a `Host` other than localhost or a
    loopback address (a DNS-rebinding page reaches the proxy under its own name). A client not
    on a loopback address is refused too (`--host 0.0.0.0` must not lend the credentials to the
    network).
    """
    from b24emu.control.access import host_name, is_loopback

    if not is_loopback(request.remote_addr):
        return ("FORBIDDEN_CLIENT", "The recording proxy answers clients on this machine only "
                                    "(a loopback address)")
    if host_name(request.host) != "localhost":
        return ("FORBIDDEN_HOST", "The recording proxy answers localhost and loopback "
                                  f"addresses only, not Host {request.host!r}")
    if request.headers.get("Origin") is not None or request.headers.get(
            "Sec-Fetch-Site", "none") not in ("none", "same-origin"):
        return ("FORBIDDEN_ORIGIN", "The recording proxy refuses requests from web pages: it "
                                    "forwards them with the real portal's credentials")
    return None


class UpstreamError(ValueError):
    """An --upstream URL the proxy cannot use."""


def parse_upstream(url: str, token: str | None) -> tuple[str, str, str]:
    """(base URL ending in `/`, auth kind, the URL as written to the recording, masked)."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2]  # user:password@ is sent, never shown or written
    if parts.scheme not in ("http", "https") or not host:
        shown = masked_url(url)
        raise UpstreamError(f"--upstream must be a portal's REST URL like "
                            f"https://example.bitrix24.com/rest/1/<code>/, got {shown!r}")
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments or segments[0] != "rest" or len(segments) not in (1, 3):
        raise UpstreamError("--upstream must end in /rest/<user>/<code>/ (a webhook) or /rest/ "
                            "(OAuth, with --upstream-token)")
    base = urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments) + "/", "", ""))
    if len(segments) == 3:
        masked = urlunsplit((parts.scheme, host, f"/rest/{segments[1]}/{rec.MASK}/", "", ""))
        return base, "webhook", masked
    if not token:
        raise UpstreamError("an OAuth upstream (/rest/) needs --upstream-token")
    return base, "oauth", urlunsplit((parts.scheme, host, "/rest/", "", ""))


class RecordingProxy:
    """A WSGI app forwarding `/rest/` calls to one upstream and recording them.

    `recording` is the file's header plus `calls`: the method and status of each call written
    (the calls themselves are in the file only). The file is opened by `start`/`serve_forever`
    once the proxy listens (or by the first call, for a WSGI server of the caller's)."""

    def __init__(self, upstream: str, out, *, token: str | None = None, timeout: float = 60.0,
                 verify: bool | str = True):
        self.base, self.auth, masked = parse_upstream(upstream, token)
        self.token = token if self.auth == "oauth" else None
        code = urlsplit(self.base).path.split("/")[3:4] if self.auth == "webhook" else []
        password = urlsplit(self.base).password
        self.secrets = tuple(secret for secret in (token, *code, password) if secret)
        self.out = out
        self.timeout = timeout
        self.verify = verify
        self._head = rec.header(masked, self.auth)
        self.recording = {**self._head, "calls": []}
        self._lock = threading.Lock()
        self._preparing = threading.BoundedSemaphore(MAX_RECORDING_AT_ONCE)
        self._local = threading.local()
        self._server = self._thread = None
        self.url = ""
        self._writer: rec.RecordingWriter | None = None
        self._closed = False
        self._stopped = ""  # why nothing more is written ("full", "stopped"), once it is so
        self.unrecorded = 0  # calls forwarded but not written because the file was full
        self._full_lock = threading.Lock()
        redact.guard_logs(*LOGGERS)  # `b24emu record` runs without create_app

    def open(self) -> None:
        """Create the recording file with its header (once); OSError when it cannot be."""
        with self._lock:
            if self._writer is None and not self._closed:
                self._writer = rec.RecordingWriter(self.out, self._head, MAX_RECORDING_BYTES)

    # --- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        refusal = _browser_refusal(request)
        if refusal is not None:
            return _error(Response, 403, *refusal)(environ, start_response)
        # One byte more than allowed: werkzeug stops a chunked body at its limit silently.
        request.max_content_length = MAX_BODY_BYTES + 1
        try:
            response = self.forward(request, Response)
        except RequestEntityTooLarge:
            response = _error(Response, 413, "REQUEST_ENTITY_TOO_LARGE",
                              "The request body is too large to record")
        return response(environ, start_response)

    def forward(self, request, response_class):
        """Forward one request; record it when it reached the upstream."""
        path = parse_rest_path(request.path[len("/rest/"):]) if request.path.startswith(
            "/rest/") else None
        if path is None or not path.method:
            return _error(response_class, 404, "NOT_PROXIED",
                          "The recording proxy forwards /rest/<method> calls only")
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        body = request.get_data(cache=True)
        if len(body) > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()
        content_type = request.headers.get("Content-Type", "")
        query = request.query_string
        send_query, send_body = query, body
        if self.token:  # the client's own token is replaced by the upstream's
            send_query, send_body = rec.without_client_credentials(
                query, body, content_type, request.method)
            send_query = b"&".join(part for part in (
                send_query, b"auth=" + quote(self.token, safe="").encode()) if part)
        headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS
                   if name in request.headers}
        sent = quote(send_query, safe=_QUERY_SAFE)
        url = self.base + segment + (f"?{sent}" if sent else "")
        try:
            upstream = self._session().request(
                request.method, url, data=send_body if request.method != "GET" else None,
                headers=headers, timeout=self.timeout, verify=self.verify,
                allow_redirects=False, stream=True)
            answer = _read_capped(upstream, MAX_ANSWER_BYTES)
        except requests.RequestException as error:
            log.warning("upstream unreachable for %s: %s", path.method, type(error).__name__)
            return _error(response_class, 502, "UPSTREAM_UNREACHABLE",
                          f"The upstream portal did not answer ({type(error).__name__})")
        if answer is None:
            log.warning("upstream answer to %s over %d bytes: not forwarded", path.method,
                        MAX_ANSWER_BYTES)
            return _error(response_class, 502, "UPSTREAM_ANSWER_TOO_LARGE",
                          f"The upstream portal's answer is larger than {MAX_ANSWER_BYTES} "
                          "bytes, more than the recording proxy forwards")
        try:
            self._record(path, segment, request, query, content_type, body, upstream, answer)
        except Exception as error:  # noqa: BLE001 (the portal ran the call: answer it anyway)
            self._stop(f"{type(error).__name__} while preparing a call for the file")
        out_headers = [(name, self._shown(value) if name.lower() == "location" else value)
                       for name, value in upstream.headers.items()
                       if name.lower() not in DROPPED_RESPONSE_HEADERS]
        return response_class(answer, upstream.status_code, out_headers)

    def _shown(self, value: str) -> str:
        """A header value with the proxy's own credentials masked (a redirect's `Location`
        may carry the upstream's webhook URL): by the journal's rules, so a secret too short
        to be searched for (a password of one character) does not mangle the rest of it."""
        return redact.scrub_text(value, self.secrets)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _record(self, path, segment, request, query, content_type, body, upstream,
                answer) -> None:
        if self._writer is None:
            self.open()
        if not self._room(path.method):  # full: no work for a call that will not be written
            return
        with self._preparing:  # a few at a time: each entry holds a copy of its answer
            if not self._room(path.method):
                return
            form_pairs = None
            if rec.body_kind(content_type, request.method) == "multipart":
                request.max_form_parts = MAX_FORM_PARTS
                try:
                    form_pairs = list(request.form.items(multi=True))
                except Exception:  # noqa: BLE001 (an unreadable form is recorded as its bytes)
                    form_pairs = []
            entry = rec.entry(method=path.method, segment=segment, http_method=request.method,
                              query=query, content_type=content_type, body=body,
                              form_pairs=form_pairs, status=upstream.status_code,
                              answer_type=upstream.headers.get("Content-Type", ""),
                              answer=answer, known_secrets=self.secrets)
            with self._lock:
                if not self._room(path.method):
                    return
                if self._writer.append(entry):
                    self.recording["calls"].append({"method": path.method,
                                                    "status": upstream.status_code})
                    return
                error = self._writer.error
            if error is None:
                self._stopped = "full"
                self._room(path.method)
            else:
                self._stop(f"cannot write {self.out} ({type(error).__name__}: {error})")

    def _room(self, method: str) -> bool:
        """True while the file takes calls; a call that will not be written is logged."""
        if self._stopped == "full" or len(self.recording["calls"]) >= MAX_CALLS:
            with self._full_lock:  # _room may run under self._lock
                first = not self.unrecorded
                self._stopped, self.unrecorded = "full", self.unrecorded + 1
            if first:  # once: an hour of calls past the limit must not fill the log instead
                log.warning("recording full (%d calls, %d bytes): %s and later calls are"
                            " forwarded, not recorded", len(self.recording["calls"]),
                            self._writer.size if self._writer else 0, method)
            return False
        return not self._stopped and self._writer is not None

    def _stop(self, reason: str) -> None:
        """Write no more calls (logged once); calls are still forwarded."""
        with self._lock:
            if self._stopped == "stopped":
                return
            self._stopped = "stopped"
        log.error("recording stopped: %s; %d calls kept in %s, later calls are forwarded, "
                  "not recorded", reason, len(self.recording["calls"]), self.out)

    # --- serving ------------------------------------------------------------------------------

    def bind(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (nothing served yet); OSError when the port cannot be had."""
        from werkzeug.serving import make_server

        try:
            self._server = make_server(host, port, self, threaded=True,
                                       request_handler=_quiet_handler())
        except SystemExit:  # werkzeug has said why on stderr ("Port 8081 is in use ...")
            raise OSError(f"cannot listen on {host}:{port}") from None
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_port}"

    def _listen_then_open(self, host: str | None, port: int | None) -> None:
        if self._server is None:
            self.bind(host or "127.0.0.1", port or 0)
        try:
            self.open()
        except BaseException:
            self._server.server_close()
            self._server = None
            raise

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RecordingProxy:
        """Serve in a background thread (tests); `url` is where clients call."""
        self._listen_then_open(host, port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="b24emu-record", kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (or only listening, after `bind`) and close the file."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = self._thread = None
        self.close()

    def close(self) -> None:
        """Close the recording file (every call in it is complete already)."""
        with self._lock:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
        if self.unrecorded:
            log.warning("%d calls were forwarded but not recorded: %s was full",
                        self.unrecorded, self.out)

    def serve_forever(self, host: str | None = None, port: int | None = None) -> None:
        """Serve in the foreground until Ctrl-C (the recording is complete after every call);
        listens first (unless `bind` did), then creates the file."""
        self._listen_then_open(host, port)
        server = self._server
        try:
            server.serve_forever(poll_interval=0.2)  # werkzeug ends it quietly on Ctrl-C
        finally:
            server.server_close()
            self._server = None
            self.close()


def _read_capped(response: requests.Response, limit: int) -> bytes | None:
    """The whole (decoded) answer, or None when it is over `limit` bytes."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks)


def _quiet_handler():
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        timeout = HANDLER_TIMEOUT  # a silent client's connection (and thread) is let go

        def log_request(self, *args, **kwargs):
            pass

    return QuietHandler


def _error(response_class, status: int, code: str, description: str):
    body = json.dumps({"error": code, "error_description": description})
    return response_class(body, status, {"Content-Type": "application/json; charset=utf-8"})
