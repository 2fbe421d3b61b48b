"""The `_global` system methods: server.time, methods, method.get, scope, profile (B 6.6, 7.5).

They need no scope grant. `methods` and `scope` read their parameters case-insensitively
(`array_change_key_case` in CRestProvider); `method.get` reads `name` as sent (case-sensitive
key and value).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from b24emu import php
from b24emu.methods.registry import GLOBAL_SCOPE, Call, Caller, Method, method
from b24emu.rest import auth
from b24emu.rest.envelope import iso_date
from b24emu.rest.errors import BitrixError
from b24emu.stubs import answer as stubs

# The portal's whole list of scopes, as the docs give it (api-reference/scopes/permissions.md,
# plus user_basic and user_brief from api-reference/user/user-scope.md): `scope?full=true`
# lists them with any other scope a registered method names.
DOCUMENTED_SCOPES = (
    "ai_admin", "biconnector", "bizproc", "booking", "calendar", "call", "cashbox", "catalog",
    "contact_center", "crm", "delivery", "department", "disk", "documentgenerator", "entity",
    "humanresources", "humanresources.hcmlink", "im", "imbot", "imconnector", "imopenlines",
    "intranet", "landing", "lists", "log", "mailservice", "main", "messageservice", "mobile",
    "pay_system", "placement", "pull", "rpa", "sale", "salescenter", "sign.b2e", "socialnetwork",
    "sonet_group", "task", "telephony", "timeman", "user", "user.userfield", "user_basic",
    "user_brief", "userconsent", "userfieldconfig", "vote")
# The REST module's own `_global` methods, in the order `methods` lists them.
GLOBAL_ORDER = ("batch", "scope", "methods", "method.get", "server.time")


@method("server.time", scope=GLOBAL_SCOPE, upper_keys=False,
        params=())
def server_time(call: Call) -> str:
    """date('c'): the portal's current time, its offset, second precision."""
    return iso_date(call.started_at, call.emulator.zone)


def _caller_scopes(call: Call) -> list[str]:
    return sorted(call.caller.scopes)


def grants(caller: Caller, entry: Method, scopes=None) -> bool:
    """Whether `scopes` (default: the caller's) let it call `entry`: the REST core's own check."""
    if scopes is not None:
        caller = replace(caller, scopes=frozenset(scopes))
    try:
        auth.check_scope(caller, entry)
    except BitrixError:
        return False
    return True


def all_scopes(registry) -> list[str]:
    """Every scope a portal knows: the documented list and any a registered method uses."""
    used = {entry.scope for entry in registry.all() if entry.scope != GLOBAL_SCOPE}
    return sorted(used | set(DOCUMENTED_SCOPES))


@method("scope", scope=GLOBAL_SCOPE,
        params=("full",))
def scope_list(call: Call) -> list[str]:
    """The caller's scopes; `full=true`: every scope the portal knows."""
    if php.truthy(call.params.get("FULL")):
        return all_scopes(call.emulator.registry)
    return _caller_scopes(call)


@method("methods", scope=GLOBAL_SCOPE,
        params=("scope", "full"))
def methods_list(call: Call) -> list[str]:
    """Public methods of the caller's scopes plus `_global` (`scope=x`: only x; `full`: all)."""
    entries = [entry for entry in call.emulator.registry.all() if not entry.private]
    entries += stubs.stubbed_methods(call.emulator, call.caller.portal)
    if call.params.get("SCOPE") is not None:
        wanted = call.params["SCOPE"]
        if isinstance(wanted, (list, dict)):
            listed = []  # in_array against an array scope matches nothing
        elif php.to_str(wanted) == "":
            listed = [entry for entry in entries if entry.scope == GLOBAL_SCOPE]
        else:
            wanted = php.to_str(wanted)
            listed = [entry for entry in entries if entry.scope == wanted or (
                entry.scope != GLOBAL_SCOPE and grants(call.caller, entry, {wanted}))]
    elif php.truthy(call.params.get("FULL")):
        listed = entries
    else:
        listed = [entry for entry in entries if grants(call.caller, entry)]
    listed.sort(key=_listing_order)
    return [entry.name for entry in listed]


def _listing_order(entry: Method) -> tuple:
    """CRestProvider's description order: `_global` first (its own five, others, `profile`
    appended last), then scope by scope."""
    if entry.scope != GLOBAL_SCOPE:
        return (1, entry.scope, 0, entry.name)
    if entry.name in GLOBAL_ORDER:
        return (0, "", GLOBAL_ORDER.index(entry.name), "")
    return (0, "", len(GLOBAL_ORDER) + (entry.name == "profile"), entry.name)


@method("method.get", scope=GLOBAL_SCOPE, upper_keys=False,
        params=("name",))
def method_get(call: Call) -> dict:
    """Whether a method exists and whether the caller may call it (`name`, case-sensitive)."""
    result = {"isExisting": False, "isAvailable": False}
    name = call.params.get("name")
    if not php.truthy(name) or not isinstance(name, str):
        return result
    entry = call.emulator.registry.get(name) or next(
        (stub for stub in stubs.stubbed_methods(call.emulator, call.caller.portal)
         if stub.name == name.lower()), None)
    if entry is None or entry.name != name:  # the portal's method table is keyed lower-case
        return result
    result["isExisting"] = True
    result["isAvailable"] = grants(call.caller, entry)
    return result


@method("profile", scope=GLOBAL_SCOPE, upper_keys=False,
        params=())
def profile(call: Call) -> dict | list:
    """The calling user's basic profile; `[]` for an inactive one."""
    user = call.emulator.portals.user(call.caller.portal, call.caller.user_id)
    if user is None or not user["active"]:
        return []
    return {
        "ID": str(user["id"]),
        "ADMIN": bool(user["admin"]),
        "NAME": user["name"] or "",
        "LAST_NAME": user["last_name"] or "",
        "PERSONAL_GENDER": user["gender"] or "",
        "TIME_ZONE": user["time_zone"] or "",
        "TIME_ZONE_OFFSET": time_zone_offset(user["time_zone"], call.emulator.zone,
                                             call.started_at),
    }


def time_zone_offset(user_zone: str | None, portal_zone, at: float) -> int:
    """CTimeZone::GetOffset(user) + date('Z'): the user's own UTC offset in seconds.

    A user without a time zone (or an unknown one) gets the portal's offset.
    """
    moment = datetime.fromtimestamp(at, portal_zone)
    zone = portal_zone
    if user_zone:
        try:
            zone = ZoneInfo(user_zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = portal_zone
    return int(moment.astimezone(zone).utcoffset().total_seconds())
