"""The recording file: the REST calls a portal answered, with every credential removed or masked.

JSON Lines, one JSON object a line: a header first, then one line per call, appended as the call
is answered (nothing already written is rewritten):

    {"format": "b24emu-recording", "version": 2, "upstream": "https://x.bitrix24.com/rest/1/…/",
     "auth": "webhook"}
    {"method": "crm.deal.get", "path_method": "crm.deal.get.json",
     "request": {"http_method": "POST", "query": "", "content_type": "application/json",
                 "body": "{\\"ID\\":5}"},
     "params": {"ID": 5}, "status": 200, "content_type": "application/json; charset=utf-8",
     "response": {"result": {...}, "time": {...}}}

`load` also reads version 1 (one JSON document with a `calls` array) and returns either as
`{"format", "version", "upstream", "auth", "calls": [...]}`.

`request` is what the client sent minus its own credentials (`auth`, `access_token`: `verify`
replays with the emulator's); `params` the same decoded by PHP's rules; `response` the decoded
JSON answer (`response_text` when the answer was not JSON). Every other credential is masked by
`b24emu.rest.redact` (its rules by name, inside batch `cmd` strings and by value), in the query,
every kind of body (JSON, form, multipart), `params` and the answer.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from urllib.parse import quote_plus, unquote_plus

from b24emu.rest import redact
from b24emu.rest.params import decode_request

FORMAT, VERSION = "b24emu-recording", 2
READABLE_VERSIONS = (1, 2)
MASK = redact.MASK
# The client's own credentials: the proxy sends the upstream's instead (OAuth) and `verify` the
# emulator's, so they are left out of the recording (and, for OAuth, out of what is forwarded).
CLIENT_CREDENTIALS = frozenset({"auth", "access_token"})
MAX_RESPONSE_TEXT = 100_000  # characters of a non-JSON answer kept
_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)


class RecordingError(ValueError):
    """A file that is not a readable recording."""


def header(upstream: str, auth: str) -> dict:
    """The first line of a recording of one upstream (its URL already masked)."""
    return {"format": FORMAT, "version": VERSION, "upstream": upstream, "auth": auth}


def is_client_credential(name: str) -> bool:
    """True for `auth`/`access_token` as PHP names them (`AUTH`, `auth[]`, `access.token`)."""
    base = name.lstrip(" ").split("[", 1)[0].replace(".", "_").replace(" ", "_").lower()
    return base in CLIENT_CREDENTIALS


# --- what is forwarded (OAuth: without the client's own token) ---------------------------------


def body_kind(content_type: str, http_method: str) -> str:
    """How the portal reads a body: `form`, `multipart`, `json` or `other` (parse_str)."""
    sapi = re.split(r"[;, ]", content_type or "", maxsplit=1)[0].lower()
    if sapi == "application/x-www-form-urlencoded":
        return "form"
    if sapi == "multipart/form-data":
        return "multipart"
    if re.sub(r";.*$", "", content_type or "").strip() == "application/json":
        return "json"
    return "other" if http_method.upper() == "POST" else "none"


def without_client_credentials(query: bytes, body: bytes, content_type: str,
                               http_method: str) -> tuple[bytes, bytes]:
    """The query and body with the client's `auth`/`access_token` left out, every other byte as
    the client sent it (a body without them is returned as it is)."""
    query = _drop_pairs(query)
    kind = body_kind(content_type, http_method)
    if kind in ("form", "other"):
        body = _drop_pairs(body)
    elif kind == "multipart":
        body = _rewrite_parts(body, content_type, lambda name, content: (
            None if is_client_credential(name) else content))
    elif kind == "json":
        data = _json(body)
        if isinstance(data, dict) and any(is_client_credential(str(key)) for key in data):
            body = json.dumps({key: value for key, value in data.items()
                               if not is_client_credential(str(key))},
                              ensure_ascii=False).encode("utf-8")
    return query, body


def _drop_pairs(data: bytes) -> bytes:
    pieces = data.split(b"&")
    kept = [piece for piece in pieces
            if not is_client_credential(unquote_plus(piece.partition(b"=")[0].decode("latin-1")))]
    return data if len(kept) == len(pieces) else b"&".join(kept)


def _rewrite_parts(body: bytes, content_type: str, change) -> bytes:
    """A multipart body with each part's content replaced by `change(name, content)` (None drops
    the part); the body as it is when it has no boundary."""
    match = re.search(r'boundary="?([^";,]+)"?', content_type or "", re.IGNORECASE)
    if not match:
        return body
    delimiter = b"--" + match.group(1).encode("latin-1")
    chunks = body.split(delimiter)
    out = [chunks[0]]
    for chunk in chunks[1:]:
        head, separator, rest = chunk.partition(b"\r\n\r\n")
        name = _NAME.search(head)
        if chunk.startswith(b"--") or not separator or name is None:
            out.append(chunk)
            continue
        content, newline = (rest[:-2], b"\r\n") if rest.endswith(b"\r\n") else (rest, b"")
        changed = change(name.group(1).decode("utf-8", "replace"), content)
        if changed is not None:
            out.append(head + separator + changed + newline)
    return delimiter.join(out)


# --- what is written -----------------------------------------------------------------------


def entry(*, method: str, segment: str, http_method: str, query: bytes, content_type: str,
          body: bytes, form_pairs, status: int, answer_type: str, answer: bytes,
          known_secrets=()) -> dict:
    """One call as it is written to the recording, every credential masked.

    `form_pairs`: a multipart body's fields as decoded (None otherwise); `known_secrets`: the
    proxy's own credentials, masked wherever they appear."""
    try:
        params = decode_request(http_method=http_method, query_string=query,
                                content_type=content_type, body=body, form_pairs=form_pairs)
    except Exception:  # noqa: BLE001 (a body PHP would not decode is still recorded)
        params = {}
    secrets = redact.secrets_of(params, *known_secrets)
    secrets |= redact.secrets_of(_query_values(query))
    kind = body_kind(content_type, http_method)
    if kind == "multipart" and form_pairs is not None:
        secrets |= redact.secrets_of(dict(form_pairs))
    record = {
        "method": method, "path_method": segment,
        "request": {"http_method": http_method,
                    "query": _mask_pairs(query.decode("latin-1"), secrets),
                    "content_type": content_type,
                    "body": _mask_body(body, kind, content_type, secrets)},
        "params": redact.params({key: value for key, value in params.items()
                                 if not is_client_credential(str(key))}, secrets),
        "status": status, "content_type": answer_type,
    }
    decoded = _json(answer, strict=False)
    if decoded is _INVALID:
        record["response"] = None
        record["response_text"] = redact.scrub_text(
            answer.decode("utf-8", "replace")[:MAX_RESPONSE_TEXT], secrets)
    else:
        record["response"] = redact.params(decoded, secrets | redact.secrets_of(decoded))
    return record


_INVALID = object()


def _json(data: bytes, strict: bool = True):
    try:
        return json.loads(data)
    except ValueError:
        return None if strict else _INVALID


def _query_values(query: bytes) -> dict:
    """Credential values of a query by name, however the name is spelled (`ap=`, `AUTH=`)."""
    values = {}
    for piece in query.decode("latin-1").split("&"):
        name, equals, value = piece.partition("=")
        if equals and value:
            values.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return values


def _mask_pairs(text: str, secrets) -> str:
    """`name=value&…` with the client's credentials left out, every other credential masked by
    name (batch `cmd` strings too) and every known secret by value; untouched pairs as sent."""
    pieces = []
    for piece in text.split("&"):
        raw_name, equals, raw_value = piece.partition("=")
        name = unquote_plus(raw_name)
        if is_client_credential(name):
            continue
        if equals:
            value = unquote_plus(raw_value)
            if redact.is_credential(name):
                masked = redact.mask(value) if value else value
            elif name.lower().split("[", 1)[0] == redact.BATCH_KEY:
                masked = redact.scrub(redact.command(value), secrets)
            else:
                masked = redact.scrub(value, secrets)
            if masked != value:
                piece = f"{raw_name}={quote_plus(masked, safe='*')}"
        pieces.append(redact.scrub(piece, secrets))
    return "&".join(pieces)


def _mask_body(body: bytes, kind: str, content_type: str, secrets) -> str:
    if kind == "multipart":
        def change(name, content):
            if is_client_credential(name):
                return None
            if redact.is_credential(name):
                return redact.mask(content.decode("utf-8", "replace")).encode("utf-8")
            text = content.decode("utf-8", "replace")
            return redact.scrub(text, secrets).encode("utf-8")

        return _rewrite_parts(body, content_type, change).decode("utf-8", "replace")
    text = body.decode("utf-8", "replace")
    if kind == "json" or (kind == "other" and text.lstrip().startswith(("{", "["))):
        data = _json(body)
        if isinstance(data, (dict, list)):
            kept = ({key: value for key, value in data.items()
                     if not is_client_credential(str(key))} if isinstance(data, dict) else data)
            masked = redact.params(kept, secrets)
            return text if masked == data else json.dumps(masked, ensure_ascii=False)
        return redact.scrub_text(text, secrets)
    if kind in ("form", "other"):
        return _mask_pairs(text, secrets)
    return redact.scrub_text(text, secrets)


# --- the file ------------------------------------------------------------------------------


class RecordingWriter:
    """Appends calls to a recording: one line each, at most `max_bytes` in all.

    Each line goes to the file in one unbuffered write (no flush needed, nothing held back). A
    write that fails (disk full, the file closed) sets `error`, cuts the file back to its last
    complete line and ends the writing: `append` returns False from then on."""

    def __init__(self, path: str | Path, head: dict, max_bytes: int):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.error: OSError | ValueError | None = None
        first = (json.dumps(head, ensure_ascii=False) + "\n").encode("utf-8")
        self._file = self.path.open("wb", buffering=0)
        try:
            self._write(first)
        except BaseException:
            self._file.close()
            raise
        self.size = len(first)

    def append(self, call: dict) -> bool:
        """Write one call; False (nothing written) when it would pass `max_bytes` or the file
        cannot be written (`error`)."""
        if self.error is not None:
            return False
        line = (json.dumps(call, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        if self.size + len(line) > self.max_bytes:
            return False
        try:
            self._write(line)
        except (OSError, ValueError) as error:
            self.error = error
            try:  # no partial line is left behind
                os.ftruncate(self._file.fileno(), self.size)
            except (OSError, ValueError):
                pass
            return False
        self.size += len(line)
        return True

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(errno.EIO, "nothing written")
            view = view[written:]

    def close(self) -> None:
        self._file.close()


def load(path: str | Path) -> dict:
    """Read and check a recording (JSON Lines, or version 1's single document)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RecordingError(f"{path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:
        raise RecordingError(f"{path}: not UTF-8 text ({error})") from None
    try:
        data = json.loads(text)  # version 1: one document
    except ValueError:
        data = None
    if not (isinstance(data, dict) and data.get("version") == 1):
        first, _, rest = text.partition("\n")
        # a last line without its newline is a call still being written
        lines = rest.split("\n") if rest.endswith("\n") else rest.split("\n")[:-1]
        try:
            data = json.loads(first)
            if isinstance(data, dict):
                data["calls"] = [json.loads(line) for line in lines if line.strip()]
        except ValueError as error:
            raise RecordingError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RecordingError(f"{path}: not a b24emu recording (no \"format\": \"{FORMAT}\")")
    if data.get("version") not in READABLE_VERSIONS or not isinstance(data.get("calls"), list):
        raise RecordingError(f"{path}: unsupported recording version {data.get('version')!r}")
    for index, call in enumerate(data["calls"]):
        if not (isinstance(call, dict) and isinstance(call.get("method"), str)
                and isinstance(call.get("request"), dict) and isinstance(call.get("status"), int)):
            raise RecordingError(f"{path}: calls[{index}] is not a recorded call")
    return data
