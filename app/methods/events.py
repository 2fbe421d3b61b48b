"""The event methods: event.bind, event.unbind, event.get, events and the offline queue.

They follow the REST module's `Api\\Event` (checks in its order, its error codes and texts; the
docs' api-reference/events/ pages list them). All of them work only in an application's (OAuth)
context: a webhook gets 403 `WRONG_AUTH_TYPE`. Binding offline handlers, binding for another
user and the whole offline queue need an administrator.

Where the emulator differs on purpose: a portal refuses handler URLs whose host has no dot
(`localhost`); the emulator accepts loopback and the hosts in B24EMU_EVENT_HOSTS, and refuses
every other host (`b24emu.events.hosts`). Features a portal sells by plan (`auth_connector`,
`clear=0`) are always enabled.
"""

from __future__ import annotations

import json

from b24emu import php
from b24emu.events import catalog
from b24emu.events.hosts import allowed_hosts, check_handler_url
from b24emu.events.store import OFFLINE_PAGE, BindError
from b24emu.methods import listing
from b24emu.methods.registry import GLOBAL_SCOPE, Call, method
from b24emu.rest import errors
from b24emu.rest.envelope import Page, iso_date

ONLINE, OFFLINE = "online", "offline"


def _app_call(call: Call) -> None:
    """Application context only (AuthTypeException)."""
    if call.caller.auth_type != "oauth":
        raise errors.wrong_auth_type()


def _is_admin(call: Call) -> bool:
    user = call.emulator.portals.user(call.caller.portal, call.caller.user_id)
    return bool(user and user["admin"])


def _connector(call: Call) -> str:
    """The request's `auth_connector` (the portal keeps it with the auth data)."""
    return php.to_str(call.params.get("AUTH_CONNECTOR"))


def _event_type(call: Call) -> str:
    event_type = php.to_str(call.params.get("EVENT_TYPE")).lower()
    if event_type == "":
        return ONLINE
    if event_type not in (ONLINE, OFFLINE):
        raise errors.argument_error("Value must be one of {online|offline}", "EVENT_TYPE")
    return event_type


@method("event.bind", scope=GLOBAL_SCOPE,
        params=("event", "handler", "auth_type", "event_type", "auth_connector", "options"))
def event_bind(call: Call) -> bool:
    """Register a handler: online (a URL the emulator POSTs to) or offline (a queue)."""
    _app_call(call)
    params, caller = call.params, call.caller
    event = php.to_str(params.get("EVENT")).upper()
    user_id = php.intval(params.get("AUTH_TYPE"))
    handler = php.to_str(params.get("HANDLER"))
    admin = _is_admin(call)
    if user_id > 0:
        if not admin and user_id != caller.user_id:
            raise errors.access_denied(
                "Event binding with AUTH_TYPE requires administrator access rights")
    elif not admin:
        user_id = caller.user_id
    connector = _connector(call)
    if event == "":
        raise errors.argument_null("EVENT")
    event_type = _event_type(call)
    if event_type == OFFLINE:
        if not admin:
            raise errors.access_denied(
                "Offline events binding requires administrator access rights")
        handler, user_id = "", 0
    elif handler == "":
        raise errors.argument_null("HANDLER")
    if handler:
        check_handler_url(handler, allowed_hosts(call.emulator.settings.event_hosts))
    if not catalog.bindable(event, caller.scopes):
        raise errors.event_not_found()
    if handler == "" and event in catalog.ONLINE_ONLY:
        raise errors.rest_argument_error("Offline event cannot be registered for this event.")
    try:
        options = catalog.clean_options(event, params.get("OPTIONS"))
        call.emulator.events.bind(caller.portal, caller.client_id, event, handler,
                                  max(user_id, 0), connector, options, call.started_at)
    except BindError as error:
        raise errors.core_error(f"Unable to set event handler: {error}") from None
    return True


@method("event.unbind", scope=GLOBAL_SCOPE,
        params=("event", "handler", "auth_type", "event_type"))
def event_unbind(call: Call) -> dict:
    """Remove the app's matching handlers: `{"count": n}`."""
    _app_call(call)
    params, caller = call.params, call.caller
    event = php.to_str(params.get("EVENT")).upper()
    handler = php.to_str(params.get("HANDLER"))
    if event == "":
        raise errors.argument_null("EVENT")
    event_type = _event_type(call)
    admin = _is_admin(call)
    connector = user_id = None
    if event_type == OFFLINE:
        if not admin:
            raise errors.access_denied(
                "Offline events unbinding requires administrator access rights")
        handler, connector = "", _connector(call)
    elif handler == "":
        raise errors.argument_null("HANDLER")
    elif "AUTH_TYPE" in params and params["AUTH_TYPE"] is not None:
        raw = params["AUTH_TYPE"]
        # The portal compares the raw value with `!==` to the user's integer id: a string (any
        # form-encoded value) never equals it, so only an administrator may pass auth_type there.
        same = isinstance(raw, int) and not isinstance(raw, bool) and raw == caller.user_id
        if not admin and not same:
            raise errors.access_denied(
                "Event unbinding with AUTH_TYPE requires administrator access rights")
        user_id = php.intval(raw)
    elif not admin:
        user_id = caller.user_id
    count = call.emulator.events.unbind(caller.portal, caller.client_id, event, handler,
                                        connector_id=connector, user_id=user_id)
    return {"count": count}


@method("event.get", scope=GLOBAL_SCOPE, params=())
def event_get(call: Call) -> list[dict]:
    """The app's handlers (a user without admin rights: only their own)."""
    _app_call(call)
    caller = call.caller
    own = None if _is_admin(call) else caller.user_id
    result = []
    for handler in call.emulator.events.handlers(caller.portal, client_id=caller.client_id,
                                                 user_id=own):
        if handler.offline:
            result.append({"event": handler.event_name, "connector_id": handler.connector_id,
                           "offline": 1})
        else:
            result.append({"event": handler.event_name, "handler": handler.handler,
                           "auth_type": str(handler.user_id), "offline": 0})
    return result


@method("events", scope=GLOBAL_SCOPE, params=("SCOPE", "FULL"))
def events_list(call: Call) -> list[str]:
    """Event names of the caller's scopes (`SCOPE`: of that one; `FULL`: all)."""
    _app_call(call)
    params = call.params
    if params.get("SCOPE") is not None:
        wanted = php.to_str(params["SCOPE"])
        scopes = [wanted] if wanted != "" else [GLOBAL_SCOPE]
    elif php.truthy(params.get("FULL")):
        scopes = list(catalog.EVENTS_BY_SCOPE)
    else:
        scopes = [*call.caller.scopes, GLOBAL_SCOPE]
    return catalog.events_of(scopes)


# --- the offline queue ----------------------------------------------------------------------

GET_FIELDS = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
LIST_FIELDS = (*GET_FIELDS, "PROCESS_ID", "ERROR")
# IRestService::sanitizeFilter's operations: no `!` ("Filter operation not allowed: !").
OPERATIONS = ("", "=", ">", "<", ">=", "<=", "@", "%")
_EVERY_ID = "id IN (SELECT value FROM json_each(?))"


def _admin_app_call(call: Call) -> None:
    _app_call(call)
    if not _is_admin(call):
        raise errors.access_denied_plain()


def _upper_keys(value):
    """array_change_key_case($value, CASE_UPPER) for an object; anything else as it is."""
    if isinstance(value, dict):
        return {key.upper() if isinstance(key, str) else key: item for key, item in value.items()}
    return value


def _pick(call: Call, where: str, args: list, fields: tuple[str, ...], default_order: dict, *,
          limit: int, start: int = 0) -> Page:
    """The queue records matching `where` that the request's `filter` and `order` select, as
    light items (ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID, PROCESS_ID, ERROR), `limit` from
    `start`. `filter` and `order` are checked as IRestService::sanitizeFilter/sanitizeOrder check
    them (the list engine with the REST module's errors), before anything changes."""
    params, caller, zone = call.params, call.caller, call.emulator.zone
    filters = params.get("FILTER")
    order = params.get("ORDER")
    rows = call.emulator.events.database.query(
        "SELECT id, timestamp_x, event_name, message_id, process_id, error FROM event_offline"  # noqa: S608
        f" WHERE portal = ? AND client_id = ? AND {where}", (caller.portal, caller.client_id,
                                                             *args))
    items = [{"ID": row["id"], "TIMESTAMP_X": iso_date(row["timestamp_x"], zone),
              "EVENT_NAME": row["event_name"], "MESSAGE_ID": row["message_id"],
              "PROCESS_ID": row["process_id"], "ERROR": row["error"]} for row in rows]
    return listing.list_page(items, filter={} if filters is None else _upper_keys(filters),
                             order=default_order if order is None else _upper_keys(order),
                             start=start, page_size=limit, fields=fields,
                             operations=OPERATIONS, errors=listing.REST_ERRORS,
                             paging=listing.OFFSET, groups=False)


def _full_records(call: Call, page: Page, *, listing_fields: bool) -> list[dict]:
    """The page's records with their payloads, in the page's order."""
    ids = [item["ID"] for item in page.items]
    if not ids:
        return []
    rows = call.emulator.events.offline_records(
        call.caller.portal, call.caller.client_id, where=_EVERY_ID, args=[json.dumps(ids)],
        order="id ASC", limit=len(ids))
    by_id = {row["id"]: row for row in rows}
    return [_record(by_id[number], call.emulator.zone, listing=listing_fields)
            for number in ids if number in by_id]


def _record(row: dict, zone, *, listing: bool) -> dict:
    """One queue record as the portal shows it (numbers as strings, like a database row)."""
    additional = row["event_additional"]
    record = {"ID": str(row["id"]), "TIMESTAMP_X": iso_date(row["timestamp_x"], zone),
              "EVENT_NAME": row["event_name"],
              "EVENT_DATA": row["event_data"] if row["event_data"] is not None else False,
              "EVENT_ADDITIONAL": additional if additional else False,
              "MESSAGE_ID": row["message_id"]}
    if listing:
        record.update({"PROCESS_ID": row["process_id"], "ERROR": str(row["error"])})
    return record


# Picks by one event.offline.get: the first without the write lock; if another consumer took
# some of those records meanwhile, a second one inside the call's transaction (the reserve
# began it), which no other writer can change, so it is the last.
RESERVE_ATTEMPTS = 2


@method("event.offline.get", scope=GLOBAL_SCOPE,
        params=("filter", "order", "limit", "clear", "process_id", "auth_connector", "error"))
def event_offline_get(call: Call) -> dict:
    """Reserve and return the first records (and delete them unless `clear=0`)."""
    _admin_app_call(call)
    params, caller = call.params, call.caller
    clear = 1 if params.get("CLEAR") is None else php.intval(params["CLEAR"])
    process_id = php.trim(params["PROCESS_ID"]) if params.get("PROCESS_ID") is not None else None
    limit = php.intval(params["LIMIT"]) if params.get("LIMIT") is not None else OFFLINE_PAGE
    with_errors = php.intval(params.get("ERROR")) == 1
    connector = _connector(call)
    if limit <= 0:
        raise errors.argument_error("Value must be positive integer", "LIMIT")
    events = call.emulator.events
    scope = "connector_id = ? AND error = ? AND process_id = ?"
    default_order = {"TIMESTAMP_X": "ASC"}
    return_process_id = not clear
    if process_id is None:
        # Picked without the write lock (a whole queue is read and sorted in Python), then
        # reserved under it only while still free: records another consumer reserved in
        # between are picked again from what is left (see RESERVE_ATTEMPTS).
        process_id, reserved = events.new_process_id(), 0
        for _ in range(RESERVE_ATTEMPTS):
            free = _pick(call, scope, [connector, int(with_errors), ""], GET_FIELDS,
                         default_order, limit=limit - reserved)
            if not free.items:
                break
            got = events.offline_reserve(
                caller.portal, caller.client_id, connector, error=with_errors, where=_EVERY_ID,
                args=[json.dumps([item["ID"] for item in free.items])], order="id ASC",
                limit=limit - reserved, process_id=process_id)
            reserved += got
            if got == len(free.items) or reserved >= limit:
                break
    else:
        return_process_id = True
    page = _pick(call, scope, [connector, int(with_errors), process_id], GET_FIELDS,
                 default_order, limit=limit)
    records = _full_records(call, page, listing_fields=False)
    if clear and records:
        events.offline_clear(caller.portal, caller.client_id, connector, process_id)
    return {"process_id": process_id if return_process_id else None, "events": records}


def _process_id(call: Call) -> str:
    if call.params.get("PROCESS_ID") is None:
        raise errors.argument_null("PROCESS_ID")
    return php.trim(call.params["PROCESS_ID"])


@method("event.offline.clear", scope=GLOBAL_SCOPE, params=("process_id", "id", "message_id"))
def event_offline_clear(call: Call) -> bool:
    """Delete a process's records (all, or those `id` / `message_id`)."""
    _admin_app_call(call)
    params, caller = call.params, call.caller
    process_id = _process_id(call)
    connector = _connector(call)
    ids = message_ids = None
    if params.get("MESSAGE_ID") is not None:
        values = params["MESSAGE_ID"]
        if not isinstance(values, (list, dict)):
            raise errors.argument_error("Value must be array of MESSAGE_ID values", "message_id")
        message_ids = [php.trim(value) for value in php.array_values(values)]
        if any(len(value) != 32 for value in message_ids):
            # the portal's own spelling of the argument name
            raise errors.argument_error("Value must be array of MESSAGE_ID values", "messsage_id")
    elif params.get("ID") is not None:
        values = params["ID"]
        if not isinstance(values, (list, dict)):
            raise errors.argument_error("Value must be array of integers", "id")
        ids = [php.intval(value) for value in php.array_values(values)]
        if any(value <= 0 for value in ids):
            raise errors.argument_error("Value must be array of integers", "id")
    call.emulator.events.offline_clear(caller.portal, caller.client_id, connector, process_id,
                                       ids=ids, message_ids=message_ids)
    return True


@method("event.offline.error", scope=GLOBAL_SCOPE, params=("process_id", "message_id"))
def event_offline_error(call: Call) -> bool:
    """Mark a process's records (by MESSAGE_ID) as failed: they return with `error=1`."""
    _admin_app_call(call)
    caller = call.caller
    process_id = _process_id(call)
    values = call.params.get("MESSAGE_ID")
    if not isinstance(values, (list, dict)):
        raise errors.argument_error("Value must be array of MESSAGE_ID values", "message_id")
    message_ids = [php.to_str(value) for value in php.array_values(values)]
    if message_ids:
        call.emulator.events.offline_mark_error(caller.portal, caller.client_id,
                                                _connector(call), process_id, message_ids)
    return True


@method("event.offline.list", scope=GLOBAL_SCOPE,
        params=("filter", "order", "start", "auth_connector"))
def event_offline_list(call: Call) -> Page:
    """Read the queue without changing it, 50 per page from the offset `start` (ORM paging; a
    negative `start` reads from 0 and still counts, as getNavData leaves no offset there)."""
    _admin_app_call(call)
    start = max(0, php.intval(call.start)) if call.start is not None else 0
    page = _pick(call, "connector_id = ?", [_connector(call)], LIST_FIELDS, {"ID": "ASC"},
                 limit=OFFLINE_PAGE, start=start)
    return Page(_full_records(call, page, listing_fields=True), total=page.total,
                next_start=page.next_start)
