"""The emulated `/rest/` surface: URL shapes to a RestRequest, and the answer back (Part A 1).

`/rest/<method>` (OAuth) and `/rest/<user>/<code>/<method>` (webhook), with `.json`/`.xml`,
a trailing slash, doubled slashes and any case; never a redirect.
"""

from __future__ import annotations

import io
import logging
import traceback
from dataclasses import dataclass

from b24emu.rest import envelope, errors, params, redact
from b24emu.rest.dispatch import RestRequest, handle
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.routing import PathConverter
from werkzeug.wrappers import Request

log = logging.getLogger("b24emu.rest")
bp = Blueprint("rest", __name__)
# Parts of a multipart body parsed at most (PHP keeps the first max_input_vars = 1000 fields and
# drops the rest, as `params.assemble_php_pairs` does; beyond this many the body is refused).
MAX_FORM_PARTS = 20_000
REST_REQUEST_KEY = "b24emu.rest_request"  # environ key: the decoded request, for failure logs
PREFIX = "/rest/"
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class AnyPathConverter(PathConverter):
    """A path that may start with or contain empty segments (`/rest//im.notify`)."""

    regex = ".*?"
    part_isolating = False  # spans "/" (werkzeug infers True from a regex without a slash)


@dataclass(frozen=True)
class RestPath:
    """What the URL says: method, transport and webhook credentials."""

    method: str
    transport: str
    aplogin: str | None = None
    ap: str | None = None


def parse_rest_path(subpath: str) -> RestPath | None:
    """`<method>[.json|.xml]` or `<user>/<code>/<method>[.json|.xml]`, slashes forgiven."""
    segments = [segment for segment in subpath.split("/") if segment]
    if len(segments) not in (1, 3):
        return None
    name, transport = segments[-1], "json"
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix.lower() in ("json", "xml"):
        name, transport = stem, suffix.lower()
    if len(segments) == 1:
        return RestPath(name.lower(), transport)
    return RestPath(name.lower(), transport, segments[0], segments[1])


@bp.route("/rest/", defaults={"subpath": ""}, methods=HTTP_METHODS)
@bp.route("/rest/<anypath:subpath>", methods=HTTP_METHODS)
def rest(subpath: str) -> Response:
    """Every emulated REST call comes through here (or through `RestFastPath`)."""
    return _respond(*answer(request, current_app.extensions["b24emu"], subpath))


def answer(req: Request, emulator, subpath: str) -> tuple[bytes, int, dict]:
    """The answer (body, status, headers) to one REST request: `req` is Flask's request or a
    plain werkzeug one."""
    path = parse_rest_path(subpath) or RestPath("", transport_hint(subpath))
    if req.method == "OPTIONS":
        return b"", 200, envelope.BASE_HEADERS
    try:
        decoded = _decode_params(req, emulator.settings.max_body_bytes)
    except RequestEntityTooLarge:
        error = errors.payload_too_large(emulator.settings.max_body_bytes)
        return envelope.error_response(error, path.transport)
    except params.DecodeLimitError as error:
        return envelope.error_response(errors.body_too_complex(str(error)),
                                        path.transport)
    except ClientDisconnected:
        # the body ended before its Content-Length: answered, not a 500 with a traceback
        error = errors.bad_request("The request body is shorter than its Content-Length")
        return envelope.error_response(error, path.transport)
    rest_request = RestRequest(
        method=path.method, transport=path.transport, params=decoded,
        portal=emulator.portal_for_host(req.host), aplogin=path.aplogin, ap=path.ap,
        bearer=_bearer_token(req), client_ip=req.remote_addr or "",
        http_method=req.method, path=req.path,
    )
    req.environ[REST_REQUEST_KEY] = rest_request  # for the log of an unexpected failure
    return handle(emulator, rest_request)


def _decode_params(req: Request, max_body_bytes: int) -> dict:
    """Query and body decoded the PHP way; too large a body raises RequestEntityTooLarge."""
    if req.content_length is not None and req.content_length > max_body_bytes:
        raise RequestEntityTooLarge()
    if req.method == "POST" and req.content_length is None:
        _buffer_unsized_body(req, max_body_bytes)
    content_type = req.headers.get("Content-Type")
    form_pairs = None
    body = b""
    if req.method == "POST" and req.mimetype == "multipart/form-data":
        req.max_form_parts = MAX_FORM_PARTS
        req.max_form_memory_size = max_body_bytes
        try:
            form_pairs = list(req.form.items(multi=True))
        except RequestEntityTooLarge:  # the body itself is within the limit: too many parts
            raise params.DecodeLimitError(
                f"The multipart body has more than {MAX_FORM_PARTS} parts") from None
    elif req.method == "POST":
        body = _body_bytes(req)
    return params.decode_request(
        http_method=req.method, query_string=req.query_string,
        content_type=content_type, body=body, form_pairs=form_pairs,
    )


def _body_bytes(req: Request) -> bytes:
    """The request body. When the server handed it over whole in memory (`b24emu serve` and
    werkzeug's test client put it in a BytesIO), that very bytes object, not a copy: an 8 MB body
    would otherwise be held twice while it is decoded."""
    stream = req.environ.get("wsgi.input")
    if type(stream) is io.BytesIO and stream.tell() == 0:
        whole = stream.getvalue()  # the initial bytes object itself while nothing wrote to it
        if len(whole) == req.content_length:
            return whole
    return req.get_data(cache=False)


def _buffer_unsized_body(req: Request, max_body_bytes: int) -> None:
    """A body without Content-Length (chunked): read at most the limit, then serve it sized.

    Werkzeug neither limits such a stream nor parses it as a form; reading it here up to
    one byte past the limit makes the limit hold and the body decode like any other.
    """
    environ = req.environ
    if not environ.get("wsgi.input_terminated"):
        return  # no way to tell where the body ends: werkzeug reads it as empty
    raw = environ["wsgi.input"].read(max_body_bytes + 1)
    if len(raw) > max_body_bytes:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _bearer_token(req: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header (B 6.3)."""
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def transport_hint(subpath: str) -> str:
    """The transport of a URL too malformed to route, so its 404 matches what was asked."""
    return "xml" if subpath.rstrip("/").lower().endswith(".xml") else "json"


def _respond(body: bytes, status: int, headers: dict) -> Response:
    return Response(body, status, headers)


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    """Werkzeug's own refusals (e.g. a Host it cannot parse, raised before routing).

    Under /rest/ they are answered as REST errors in the URL's transport; elsewhere as Flask does.
    """
    if not request.path.startswith("/rest/") or not 400 <= (exc.code or 0) < 500:
        return exc
    return _respond(*rest_http_error(exc, current_app.extensions["b24emu"], request.path))


def rest_http_error(exc: HTTPException, emulator, path: str) -> tuple[bytes, int, dict]:
    """A werkzeug refusal of a /rest/ request as a REST error in the URL's transport."""
    if isinstance(exc, RequestEntityTooLarge):
        error = errors.payload_too_large(emulator.settings.max_body_bytes)
    else:
        error = errors.http_error(exc.code, exc.name)
    return envelope.error_response(error, transport_hint(path))


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """Any failure not foreseen: logged with its traceback, answered as Bitrix's 500."""
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    return _respond(*unexpected_error(exc, request))


def unexpected_error(exc: Exception, req: Request) -> tuple[bytes, int, dict]:
    """Logged with its traceback (credentials masked), answered as Bitrix's 500."""
    log.error("unexpected error in %s %s\n%s", req.method, *_redacted_failure(exc, req))
    return envelope.error_response(errors.internal_server_error())


def _redacted_failure(exc: Exception, req: Request) -> tuple[str, str]:
    """The request's path and the traceback, with the request's credentials masked."""
    rest_request = req.environ.get(REST_REQUEST_KEY)
    if rest_request is not None:
        secrets = redact.secrets_of(rest_request.params, rest_request.ap, rest_request.bearer)
    else:
        secrets = redact.secrets_of(params.parse_php_query(req.query_string),
                                    _bearer_token(req))
    trace = "".join(traceback.format_exception(exc)).rstrip()
    return redact.path(req.path, secrets), redact.scrub_text(trace, secrets)
