"""`/oauth/token/`: the OAuth server (oauth.bitrix.info) for the emulated portals.

`grant_type=refresh_token&client_id=…&client_secret=…&refresh_token=…`, by GET (what b24pysdk,
b24phpsdk and the docs send) or POST form, answers a new access token (one hour on the
emulator's clock) and a new refresh token; the refresh token used is spent. Errors are
`{"error": "invalid_grant", "error_description": …}` with the OAuth server's status (the
checks and texts follow the OAuth2 server library's order: grant type, client, secret, grant).
"""

from __future__ import annotations

import hashlib

from b24emu import php
from b24emu.rest import envelope, errors
from b24emu.rest.errors import BitrixError
from b24emu.store.portals import ACCESS_TOKEN_LIFETIME
from flask import Blueprint, Response, current_app, request

bp = Blueprint("oauth", __name__)
SUPPORTED_GRANTS = ("refresh_token", "authorization_code")
OAUTH_CONTENT_TYPE = "application/json"


@bp.route("/oauth/token/", methods=["GET", "POST"])
@bp.route("/oauth/token", methods=["GET", "POST"])
def token() -> Response:
    """Exchange a refresh token (or refuse the request the way the OAuth server does)."""
    emulator = current_app.extensions["b24emu"]
    emulator.sync()
    try:
        body = _grant(emulator, request.values)
    except BitrixError as error:
        content, status, headers = envelope.error_response(error)
        return Response(content, status, {**headers, "Content-Type": OAUTH_CONTENT_TYPE})
    return Response(php.json_dumps(body).encode("ascii"), 200,
                    {**envelope.BASE_HEADERS, "Content-Type": OAUTH_CONTENT_TYPE})


def _grant(emulator, values) -> dict:
    grant_type = values.get("grant_type", "")
    if not grant_type:
        raise errors.grant_type_missing()
    if grant_type not in SUPPORTED_GRANTS:
        raise errors.unsupported_grant_type()
    portal = emulator.portal_for_host(request.host)
    app = _check_client(emulator, portal, values.get("client_id", ""),
                        values.get("client_secret", ""))
    now = emulator.clock.now()
    if grant_type == "authorization_code":
        if not values.get("code"):
            raise errors.code_missing()
        raise errors.invalid_code()
    refresh_token = values.get("refresh_token", "")
    if not refresh_token:
        raise errors.refresh_token_missing()
    issued = emulator.portals.rotate_refresh_token(portal, refresh_token, app["client_id"], now)
    if issued is None:
        raise errors.invalid_refresh_token()
    return _token_body(issued, app, portal)


def _check_client(emulator, portal: str, client_id: str, client_secret: str) -> dict:
    """The application, its secret compared in constant time."""
    if not client_id:
        raise errors.client_id_missing()
    app = emulator.portals.app(portal, client_id)
    if app is None:
        raise errors.wrong_client()
    if not emulator.portals.client_secret_matches(app, client_secret):
        raise errors.invalid_client()
    if not app["active"]:
        raise errors.not_installed()
    return app


def _token_body(issued: dict, app: dict, portal: str) -> dict:
    """The OAuth server's answer, its keys in the server's order."""
    base = f"{request.scheme}://{request.host}"
    return {
        "access_token": issued["access_token"],
        "expires": int(issued["expires_at"]),
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "scope": ",".join(issued["scopes"]),
        "domain": request.host,
        "server_endpoint": f"{base}/rest/",
        "status": app_status(app["client_id"]),
        "client_endpoint": f"{base}/rest/",
        "member_id": member_id(portal),
        "user_id": issued["user_id"],
        "refresh_token": issued["refresh_token"],
    }


def app_status(client_id: str) -> str:
    """The app's status letter: `L` for a local app (client id `local.…`), else `F` (free)."""
    return "L" if client_id.startswith("local.") else "F"


def member_id(portal: str) -> str:
    """The portal's stable 32-hex-character id (what Bitrix calls member_id)."""
    return hashlib.md5(f"b24emu:{portal}".encode(), usedforsecurity=False).hexdigest()
