"""Who may use `/_emulator/`: the tester, never a web page the tester's browser has open.

The hook `check_access` runs before every request of the control API and the inbox page:

1. **Who** (`/_emulator/health` is always open). With `B24EMU_CONTROL_TOKEN` set, every request
   carries `Authorization: Bearer <token>` (or `?token=` for the browser page), compared in
   constant time, and any `Host` works. Without a token, only loopback clients (IPv4, IPv6 and
   IPv4-mapped IPv6) are answered, and only under a `Host` the emulator knows: `localhost`,
   loopback addresses, the portals' domains and `B24EMU_ALLOWED_HOSTS`. A page that re-points
   its own DNS name at 127.0.0.1 (DNS rebinding) sends its own name as `Host` and gets 403.
2. **How** a state-changing request (POST, PUT, PATCH, DELETE) is made: a body must be
   `application/json`, an empty body needs the header `X-B24EMU-Control`, and an `Origin` (or
   `Sec-Fetch-Site`) must say the request comes from the emulator's own pages (without a token;
   with one, the token is the rule). A web page can
   send neither a JSON body nor a custom header to another origin without a CORS preflight, which
   the emulator never grants, so a cross-site "simple" request (a form, `fetch(…, {mode:
   "no-cors"})`) is refused before it changes anything.
3. The inbox page's event stream (`STREAM_ENDPOINTS`) holds a connection for minutes, so without a
   token it too must come from the emulator's own pages: a tab on another site cannot open
   streams by the hundred.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from flask import current_app, jsonify, request

OPEN_PATHS = ("/_emulator/health",)
# Reads that hold server resources (a connection, a stream) for minutes: only our own pages.
STREAM_ENDPOINTS = ("ui.events",)  # by view, so `/events/` or any other spelling is covered
CONTROL_HEADER = "X-B24EMU-Control"  # what the control client, the CLI and the inbox page send
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOCAL_NAMES = frozenset({"localhost"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values of our own pages


def check_access():
    """A `before_request` hook: None to go on, or the 401/403/415 answer."""
    if request.path in OPEN_PATHS:
        return None
    emulator = current_app.extensions["b24emu"]
    settings = emulator.settings
    refusal = _check_token(settings.control_token) if settings.control_token else (
        _check_loopback() or _check_host(emulator))
    if refusal is None and request.method in WRITE_METHODS:
        refusal = _check_write(check_origin=not settings.control_token)
    elif refusal is None and request.endpoint in STREAM_ENDPOINTS and not settings.control_token:
        refusal = _check_origin()
    return refusal


def _check_token(token: str):
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    sent = sent.strip() if scheme.lower() == "bearer" else request.args.get("token", "")
    if hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), token.encode("utf-8")):
        return None
    response = _refuse(401, "unauthorized", "The control API needs its bearer token")
    response.headers["WWW-Authenticate"] = 'Bearer realm="b24emu"'
    return response


def _check_loopback():
    if is_loopback(request.remote_addr):
        return None
    return _refuse(403, "forbidden", "The control API answers loopback clients only; "
                                     "set B24EMU_CONTROL_TOKEN to open it")


def _check_host(emulator):
    name = host_name(request.host)
    if name in allowed_hosts(emulator):
        return None
    shown = request.host[:100]
    return _refuse(403, "forbidden_host", (
        f"The control API does not answer for Host {shown!r}; add its name to "
        "B24EMU_ALLOWED_HOSTS (comma-separated) or set B24EMU_CONTROL_TOKEN"))


def _check_write(*, check_origin: bool):
    """A state-changing request must be one a web page of another origin cannot make. With a
    control token the token is the rule for origins (a page elsewhere cannot learn it)."""
    if check_origin and (refusal := _check_origin("change the emulator")):
        return refusal
    if _has_body():
        if request.mimetype != "application/json":
            return _refuse(415, "unsupported_media_type", (
                "A control request body must be Content-Type: application/json, "
                f"not {request.mimetype[:100]!r}"))
        return None
    if CONTROL_HEADER not in request.headers:
        return _refuse(403, "control_header_required", (
            f"A {request.method} without a body needs the header {CONTROL_HEADER}: 1 "
            "(the control client, the CLI and the inbox page send it)"))
    return None


def _check_origin(what: str = "open an event stream"):
    """403 when `Origin` or `Sec-Fetch-Site` says a page of another origin sent the request."""
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    foreign_origin = origin is not None and not _is_own_origin(origin)
    foreign_fetch = fetch_site is not None and fetch_site.lower() not in SAME_ORIGIN_FETCH
    if not (foreign_origin or foreign_fetch):
        return None
    return _refuse(403, "forbidden_origin", (
        f"Cross-origin requests cannot {what} "
        f"(Origin {(origin or '-')[:100]!r}, Sec-Fetch-Site {(fetch_site or '-')[:20]!r})"))


def allowed_hosts(emulator) -> set[str]:
    """Host names the control API answers without a token (lower case, no port)."""
    names = set(LOCAL_NAMES)
    names.update(name.strip().lower().rstrip(".")
                 for name in emulator.settings.allowed_hosts.split(",") if name.strip())
    names.update(row["domain"].lower() for row in
                 emulator.database.query("SELECT domain FROM portals WHERE domain IS NOT NULL"))
    return names


def host_name(host: str) -> str:
    """The name of a `Host` header: lower case, no port, no brackets, no trailing dot; a
    loopback address literal (any spelling) is `localhost`."""
    name = (host or "").strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    return "localhost" if is_loopback(name) else name


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 and their IPv4-mapped spelling ::ffff:127.0.0.1."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _is_own_origin(origin: str) -> bool:
    """True when `Origin` names this server as the request reached it (scheme, host, port)."""
    try:
        given, own = urlsplit(origin), urlsplit(f"{request.scheme}://{request.host}")
        return (bool(given.hostname) and given.scheme == own.scheme
                and given.hostname == own.hostname and given.path in ("", "/")
                and _port(given) == _port(own))
    except ValueError:  # "null" (sandboxed frames, file: pages) parses; a bad port does not
        return False


def _port(url) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)


def _has_body() -> bool:
    """True when the request carries a body (a length above 0, or a chunked one)."""
    if request.content_length:
        return True
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _refuse(status: int, code: str, description: str):
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    return response
