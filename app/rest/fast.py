"""The /rest/ surface without Flask's per-request machinery.

`RestFastPath` sits in front of the Flask app (as its `wsgi_app`): a request whose path starts
with `/rest/` and whose method the REST routes accept is answered by `routes.answer` with a plain
werkzeug request (no request or app context, no URL map matching, no session); every other
request, `/_emulator/` included, goes on to Flask. Answers, errors and logs are the same either
way: both call the same functions.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache

from b24emu.rest import routes
from werkzeug.exceptions import BadHost, HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

PREFIX = routes.PREFIX
METHODS = frozenset(routes.HTTP_METHODS)
DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"  # Flask's, for an answer that names none
# The request being answered here, for code that would otherwise ask Flask (e.g. the address
# an event delivery names as the caller's, b24emu.events.firing).
CURRENT_REQUEST: ContextVar[Request | None] = ContextVar("b24emu_rest_request", default=None)


class RestFastPath:
    """WSGI middleware: /rest/ calls answered directly, everything else by `flask_app`."""

    def __init__(self, flask_app, emulator):
        self.flask_app = flask_app
        self.emulator = emulator

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in METHODS:
            return self.flask_app(environ, start_response)
        # Not put back into the environ (werkzeug's default): the request and its environ
        # would hold each other, a cycle per call left to the garbage collector, whose
        # collections then came every few dozen calls.
        req = Request(environ, populate_request=False)
        path = req.path
        if not path.startswith(PREFIX):
            return self.flask_app(environ, start_response)
        req.max_content_length = self.emulator.settings.max_body_bytes
        token = CURRENT_REQUEST.set(req)
        try:
            _check_host(req)
            body, status, headers = routes.answer(req, self.emulator, path[len(PREFIX):])
        except HTTPException as exc:
            if not 400 <= (exc.code or 0) < 500:
                return exc(environ, start_response)
            body, status, headers = routes.rest_http_error(exc, self.emulator, path)
        except Exception as exc:  # noqa: BLE001 (answered as Bitrix's 500, traceback logged)
            body, status, headers = routes.unexpected_error(exc, req)
        finally:
            CURRENT_REQUEST.reset(token)
        # What Flask's Response would send for these bytes, without building one.
        pairs = [*headers.items(), ("Content-Length", str(len(body)))]
        if "Content-Type" not in headers:
            pairs.append(("Content-Type", DEFAULT_CONTENT_TYPE))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}", pairs)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def _check_host(req: Request) -> None:
    """The Host Flask refuses before routing: a name that is not valid IDNA (werkzeug's
    `Map.bind`, e.g. a label over 63 characters) is a 400."""
    if not _valid_idna(req.host.lower().partition(":")[0]):
        raise BadHost()


@lru_cache(maxsize=256)
def _valid_idna(name: str) -> bool:
    """Whether a host name encodes as IDNA (the few names a server sees, each checked once)."""
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True
