"""What a handler receives: the portal's form-encoded POST body (PHP brackets).

`event`, `event_handler_id`, `data`, `ts` and `auth`, encoded as PHP's `http_build_query` does
(`data[FIELDS][ID]=5`, brackets percent-encoded, spaces as `+`, true/false as 1/0, empty arrays
and nulls left out), so any PHP-style decoder (PHP itself, the SDKs, `b24emu.rest.params`) reads
it back as the nested structure the docs show.
"""

from __future__ import annotations

from urllib.parse import quote_plus

from b24emu import php
from b24emu.oauth.routes import app_status, member_id
from b24emu.store.portals import ACCESS_TOKEN_LIFETIME


def php_query(values: dict) -> str:
    """PHP http_build_query() of a nested dict/list structure."""
    pairs: list[str] = []
    for key, value in values.items():
        _pairs(quote_plus(str(key)), value, pairs)
    return "&".join(pairs)


def _pairs(prefix: str, value, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _pairs(f"{prefix}%5B{quote_plus(str(key))}%5D", item, out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _pairs(f"{prefix}%5B{index}%5D", item, out)
    elif value is None:
        return
    else:
        out.append(f"{prefix}={quote_plus(_scalar(value))}")


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return php.float_to_str(value)
    return str(value)


def auth_block(*, portal: str, client_id: str, application_token: str, base_url: str,
               tokens: dict | None, user_id: int) -> dict:
    """The `auth` object, keys in the portal's order. Without a user (an event no user caused)
    there are no tokens: only the portal's addresses, member_id and application_token."""
    host = base_url.split("://", 1)[-1].rstrip("/")
    endpoint = base_url.rstrip("/") + "/rest/"
    if tokens is None:
        return {"domain": host, "client_endpoint": endpoint, "server_endpoint": endpoint,
                "member_id": member_id(portal), "application_token": application_token}
    block = {
        "access_token": tokens["access_token"],
        "expires": int(tokens["expires_at"]),
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "scope": ",".join(tokens["scopes"]),
        "domain": host,
        "server_endpoint": endpoint,
        "status": app_status(client_id),
        "client_endpoint": endpoint,
        "member_id": member_id(portal),
        "user_id": user_id,
    }
    if tokens.get("refresh_token"):
        block["refresh_token"] = tokens["refresh_token"]
    block["application_token"] = application_token
    return block


def body(*, event: str, handler_id: int, data, ts: float, auth: dict) -> str:
    """The form-encoded body of one delivery."""
    return php_query({"event": event, "event_handler_id": handler_id, "data": data,
                      "ts": int(ts), "auth": auth})
