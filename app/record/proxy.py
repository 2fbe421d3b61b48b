"""`b24emu record`: a proxy between a client and a real portal that writes down every call.

The client calls the proxy as it would call the portal (`http://127.0.0.1:8080/rest/<method>`,
or with any `/rest/<user>/<code>/` in front); the proxy forwards the call unchanged to the
upstream webhook URL (or, for OAuth, the upstream's `/rest/` with `--upstream-token` as `auth`),
returns the upstream's answer unchanged (status, content type, body) and appends the pair to
the recording, credentials removed and secrets masked (`b24emu.record.recording`). The file is
rewritten atomically after every call, so it is always a complete recording.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from b24emu.record import recording as rec
from b24emu.rest.params import decode_request
from b24emu.rest.routes import parse_rest_path
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger("b24emu.record")
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_CALLS = 5000  # calls kept in one recording; later calls are forwarded, not written
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "User-Agent", "Accept-Language")
DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding",
                                      "content-encoding", "content-length", "set-cookie",
                                      "server", "date", "proxy-authenticate", "upgrade"})


def _browser_refusal(request) -> tuple[str, str] | None:
    """Why a request must not reach the real portal, or None.

    The proxy holds the real portal's credentials, so a web page open in the user's browser must
    not be able to drive it: a request a browser marks as coming from a page (`Origin`, or a
    cross-site `Sec-Fetch-Site`) is refused, and so is a `Host` other than localhost or a
    loopback address (a DNS-rebinding page reaches the proxy under its own name).
    """
    from b24emu.control.access import host_name

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
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UpstreamError(f"--upstream must be a portal's REST URL like "
                            f"https://example.bitrix24.com/rest/1/<code>/, got {url!r}")
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments or segments[0] != "rest" or len(segments) not in (1, 3):
        raise UpstreamError("--upstream must end in /rest/<user>/<code>/ (a webhook) or /rest/ "
                            "(OAuth, with --upstream-token)")
    base = urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments) + "/", "", ""))
    if len(segments) == 3:
        masked = urlunsplit((parts.scheme, parts.netloc,
                             f"/rest/{segments[1]}/{rec.MASK}/", "", ""))
        return base, "webhook", masked
    if not token:
        raise UpstreamError("an OAuth upstream (/rest/) needs --upstream-token")
    return base, "oauth", base


class RecordingProxy:
    """A WSGI app forwarding `/rest/` calls to one upstream and recording them."""

    def __init__(self, upstream: str, out, *, token: str | None = None, timeout: float = 60.0,
                 verify: bool | str = True):
        self.base, self.auth, masked = parse_upstream(upstream, token)
        self.token = token if self.auth == "oauth" else None
        self.out = out
        self.timeout = timeout
        self.verify = verify
        self.recording = rec.new_recording(masked, self.auth)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = self._thread = None
        self.url = ""
        rec.save(self.recording, out)

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
        query = rec.strip_query(request.query_string.decode("latin-1"))
        text = body.decode("utf-8", "replace")
        clean_body = rec.strip_body(text, content_type)
        send_body = body if clean_body == text else clean_body.encode("utf-8")
        send_query = query
        if self.token:
            send_query = "&".join(part for part in (query, urlencode({"auth": self.token}))
                                  if part)
        headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS
                   if name in request.headers}
        url = self.base + segment + (f"?{send_query}" if send_query else "")
        try:
            upstream = self._session().request(
                request.method, url, data=send_body if request.method != "GET" else None,
                headers=headers, timeout=self.timeout, verify=self.verify,
                allow_redirects=False)
        except requests.RequestException as error:
            log.warning("upstream unreachable for %s: %s", path.method, type(error).__name__)
            return _error(response_class, 502, "UPSTREAM_UNREACHABLE",
                          f"The upstream portal did not answer ({type(error).__name__})")
        self._record(path, segment, request.method, query, content_type, clean_body, body,
                     upstream)
        out_headers = [(name, value) for name, value in upstream.headers.items()
                       if name.lower() not in DROPPED_RESPONSE_HEADERS]
        return response_class(upstream.content, upstream.status_code, out_headers)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _record(self, path, segment, http_method, query, content_type, clean_body, body,
                upstream) -> None:
        try:
            params = decode_request(http_method=http_method, query_string=query.encode(),
                                    content_type=content_type, body=clean_body.encode("utf-8"))
        except Exception:  # noqa: BLE001 (a body PHP would not decode is still recorded)
            params = {}
        entry = {"method": path.method, "path_method": segment,
                 "request": {"http_method": http_method, "query": query,
                             "content_type": content_type, "body": clean_body},
                 "params": rec.mask_secrets({key: value for key, value in params.items()
                                             if key not in rec.CREDENTIAL_PARAMS}),
                 "status": upstream.status_code,
                 "content_type": upstream.headers.get("Content-Type", "")}
        try:
            entry["response"] = rec.mask_secrets(json.loads(upstream.content))
        except ValueError:
            entry["response"] = None
            entry["response_text"] = upstream.content.decode("utf-8", "replace")[:100000]
        with self._lock:
            if len(self.recording["calls"]) >= MAX_CALLS:
                log.warning("recording full (%d calls): %s forwarded, not recorded", MAX_CALLS,
                            path.method)
                return
            self.recording["calls"].append(entry)
            rec.save(self.recording, self.out)

    # --- serving ------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RecordingProxy:
        """Serve in a background thread (tests); `url` is where clients call."""
        from werkzeug.serving import make_server

        self._server = make_server(host, port, self, threaded=True,
                                   request_handler=_quiet_handler())
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="b24emu-record", kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def serve_forever(self, host: str, port: int) -> None:
        """Serve in the foreground until Ctrl-C (the recording is complete after every call)."""
        from werkzeug.serving import make_server

        server = make_server(host, port, self, threaded=True, request_handler=_quiet_handler())
        server.daemon_threads = True
        server.serve_forever(poll_interval=0.2)  # werkzeug ends it quietly on Ctrl-C


def _quiet_handler():
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    return QuietHandler


def _error(response_class, status: int, code: str, description: str):
    body = json.dumps({"error": code, "error_description": description})
    return response_class(body, status, {"Content-Type": "application/json; charset=utf-8"})
