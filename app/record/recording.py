"""The recording file: the REST calls a portal answered, with every secret removed or masked.

    {"format": "b24emu-recording", "version": 1, "upstream": "https://x.bitrix24.com/rest/1/***/",
     "auth": "webhook",
     "calls": [{"method": "crm.deal.get", "path_method": "crm.deal.get.json",
                "request": {"http_method": "POST", "query": "", "content_type": "application/json",
                            "body": "{\\"ID\\":5}"},
                "params": {"ID": 5},
                "status": 200, "content_type": "application/json; charset=utf-8",
                "response": {"result": {...}, "time": {...}}}]}

`request` is what the client sent, minus its credentials (`auth`, `access_token`); `params` the
same decoded by PHP's rules; `response` the decoded JSON answer (`response_text` when the
answer was not JSON). Values under keys that hold secrets (`auth`, `access_token`,
`refresh_token`, `application_token`, `client_secret`, `password`) are written as `***`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

FORMAT, VERSION = "b24emu-recording", 1
MASK = "***"
CREDENTIAL_PARAMS = ("auth", "access_token")
SECRET_KEYS = frozenset({"auth", "access_token", "refresh_token", "application_token",
                         "client_secret", "password", "auth_id", "refresh_id", "member_id"})


class RecordingError(ValueError):
    """A file that is not a readable recording."""


def new_recording(upstream: str, auth: str) -> dict:
    """An empty recording of one upstream (its URL already masked)."""
    return {"format": FORMAT, "version": VERSION, "upstream": upstream, "auth": auth,
            "calls": []}


def mask_secrets(value):
    """A copy with the value of every secret-holding key replaced by `***`."""
    if isinstance(value, dict):
        return {key: MASK if str(key).lower() in SECRET_KEYS and value[key] not in ("", None)
                else mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def _is_credential(name: str) -> bool:
    return name.partition("[")[0].strip().lower() in CREDENTIAL_PARAMS


def _is_secret(name: str) -> bool:
    return name.partition("[")[0].strip().lower() in SECRET_KEYS


def strip_query(query: str) -> str:
    """A query string (or urlencoded body) without credentials, other secrets masked."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_is_secret(name) for name, _ in pairs):
        return query
    return urlencode([(name, MASK if _is_secret(name) and value else value)
                      for name, value in pairs if not _is_credential(name)])


def strip_body(body: str, content_type: str) -> str:
    """A request body without credentials, other secrets masked (JSON object or form)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return strip_query(body)
    if body.strip().startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return body
        masked = mask_secrets({key: value for key, value in data.items()
                               if not _is_credential(key)})
        if masked != data:
            return json.dumps(masked, ensure_ascii=False)
    return body


def save(recording: dict, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(recording, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, target)


def load(path: str | Path) -> dict:
    """Read and check a recording."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise RecordingError(f"{path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:
        raise RecordingError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RecordingError(f"{path}: not a b24emu recording (no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION or not isinstance(data.get("calls"), list):
        raise RecordingError(f"{path}: unsupported recording version {data.get('version')!r}")
    for index, call in enumerate(data["calls"]):
        if not (isinstance(call, dict) and isinstance(call.get("method"), str)
                and isinstance(call.get("request"), dict) and isinstance(call.get("status"), int)):
            raise RecordingError(f"{path}: calls[{index}] is not a recorded call")
    return data
