"""Who is calling: webhook (`/rest/<user>/<code>/…`) or OAuth token (B 6.2-6.3, Part A 3).

Wrong, expired or out-of-scope credentials raise here, so they never reach a handler.
"""

from __future__ import annotations

from b24emu import php
from b24emu.methods.registry import GLOBAL_SCOPE, Caller, Method
from b24emu.rest import errors
from b24emu.store.portals import PortalStore

# Parameters the REST core consumes before a handler sees the rest (B 1.2).
AUTH_PARAMS = ("auth", "access_token", "aplogin", "ap", "start", "state")


def authenticate(portals: PortalStore, portal: str, *, aplogin: str | None, ap: str | None,
                 bearer: str | None, params: dict, now: float) -> Caller:
    """The caller of one request, or the Bitrix 401 error for its credentials."""
    if aplogin is not None and ap is not None:
        return _webhook_caller(portals, portal, aplogin, ap)
    token = _oauth_token(bearer, params)
    if token is None:
        raise errors.no_auth_found()
    return _oauth_caller(portals, portal, token, now)


# Methods that more than one scope grants (api-reference/user/user-get.md, user-current.md,
# user-search.md).
ALSO_GRANTED_BY = {"user.current": frozenset({"user_basic", "user_brief"}),
                   "user.get": frozenset({"user_basic", "user_brief"}),
                   "user.search": frozenset({"user_basic", "user_brief"})}


def check_scope(caller: Caller, method: Method) -> None:
    """insufficient_scope unless the method's scope (or one that also grants it) is granted."""
    if method.scope == GLOBAL_SCOPE or method.scope in caller.scopes:
        return
    if caller.scopes & ALSO_GRANTED_BY.get(method.name, frozenset()):
        return
    raise errors.insufficient_scope(caller.auth_type)


def _webhook_caller(portals: PortalStore, portal: str, aplogin: str, ap: str) -> Caller:
    """aplogin is a user id or an active user's login; ap the webhook code (B 6.2)."""
    if _is_user_id(aplogin):
        user = portals.user(portal, int(aplogin))
    else:
        user = portals.user_by_login(portal, aplogin)
    hook = portals.webhook(portal, user["id"], ap) if user else None
    if hook is None:
        raise errors.invalid_credentials()
    if not user["active"]:
        raise errors.authorization_error()
    return Caller(portal, user["id"], "apauth", frozenset(hook["scopes"]), webhook_id=hook["id"])


def _is_user_id(aplogin: str) -> bool:
    """PHP's `strval(intval(x)) === x` on a 64-bit build: a canonical integer in range."""
    if not (aplogin.isascii() and aplogin.isdigit() and len(aplogin) <= 19):
        return False
    return str(int(aplogin)) == aplogin and int(aplogin) <= php.INT_MAX


def _oauth_token(bearer: str | None, params: dict) -> str | None:
    """Bearer header, else `auth`, else `access_token`: the first one that is a string."""
    for candidate in (bearer, params.get("auth"), params.get("access_token")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _oauth_caller(portals: PortalStore, portal: str, token: str, now: float) -> Caller:
    """An access token: known, not expired, its app active, its user active (B 6.3)."""
    row = portals.token(portal, token)
    if row is None:
        raise errors.invalid_token()
    if row["expires_at"] <= now:
        raise errors.expired_token()
    app = portals.app(portal, row["client_id"])
    if app is None or not app["active"]:
        raise errors.application_not_found()
    user = portals.user(portal, row["user_id"])
    if user is None or not user["active"]:
        raise errors.authorization_error()
    app_name = app["name"] or app["code"]
    return Caller(portal, user["id"], "oauth", frozenset(row["scopes"]),
                  client_id=app["client_id"], app_name=app_name)
