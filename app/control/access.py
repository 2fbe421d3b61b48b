"""Who may use `/_emulator/`: everyone on loopback, or holders of B24EMU_CONTROL_TOKEN.

With no token set, the control API and the inbox page answer loopback clients only (a remote
client gets 403 and is told to set the token). With a token set, every request must carry
`Authorization: Bearer <token>` (or `?token=` for the browser page), compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import current_app, jsonify, request

OPEN_PATHS = ("/_emulator/health",)


def check_access():
    """A `before_request` hook: None to go on, or the 401/403 answer."""
    if request.path in OPEN_PATHS:
        return None
    token = current_app.extensions["b24emu"].settings.control_token
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        sent = sent.strip() if scheme.lower() == "bearer" else request.args.get("token", "")
        if hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), token.encode("utf-8")):
            return None
        response = jsonify(error="unauthorized",
                           error_description="The control API needs its bearer token")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="b24emu"'
        return response
    if _is_loopback(request.remote_addr):
        return None
    response = jsonify(error="forbidden", error_description=(
        "The control API answers loopback clients only; set B24EMU_CONTROL_TOKEN to open it"))
    response.status_code = 403
    return response


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False
