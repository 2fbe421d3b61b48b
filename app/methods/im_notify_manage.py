"""The rest of the im.notify family: delete, read, answer/confirm, get, search, schema, counters.

Sources (spec Part B 2.3-2.11; labels from its source key):
- delete, read, read.list: IMREST / IMNOTIFY behaviour, as the spec records it (CONFIRMED).
- read.all: the current docs' object form `{"result": true, "newCounter": n}` (DOC:read-all; the
  spec's INFERRED choice over IMREST's plain `true`; b24pysdk's test expects a dict).
- answer: IMNOTIFY `CIMNotify::Answer` (any notification of the caller, no type check, the text
  trimmed; no handlers, so the default IM_ANSWER_DONE message) and DOC:answer's example text.
- confirm: IMNOTIFY `Confirm` needs a CONFIRM-type notification, which REST cannot create (B 2.7).
- get, history.search: DOC:get / DOC:history result examples (key names and order), IMREST checks.
- schema.get: IMREST / the spec's upper-case keys (DOC:schema's table; its JSON example is lower
  case, a conflict the spec settles for the code).
- im.counters.get: DOC:counters and the spec's key list (B 2.11); parameters are case-sensitive.

Every notification lives in its recipient's system chat; b24emu has no chats, so a user's system
chat id is the synthetic `NOTIFY_CHAT_ID_BASE + user id` (stable, distinct per user).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import escape

from b24emu import php
from b24emu.methods import users
from b24emu.methods.im_notify import _stored_tag, app_key
from b24emu.methods.registry import Call, method
from b24emu.rest import errors
from b24emu.store.notifications import NotificationFilter

NOTIFY_CHAT_ID_BASE = 1_000_000  # chat_id = base + user id (b24emu rule, see module doc)
PAGE_LIMIT = 50  # LIMIT default and cap of im.notify.get / history.search (B 2.8, 2.9)
ANSWER_DONE = "Your response has been successfully sent."  # IM_ANSWER_DONE (DOC:answer)
REST_MODULE, REST_EVENT = "rest", "rest_notify"
# What im.notify.schema.get lists: the module b24emu's notifications come from (B 2.10).
SCHEMA = {
    REST_MODULE: {
        "NAME": "Applications and webhooks",
        "MODULE_ID": REST_MODULE,
        "LIST": [{"ID": f"{REST_MODULE}|{REST_EVENT}", "NAME": "Notifications from applications"}],
    },
}
# Avatar colours of the messenger's palette; a user's is picked by id (Bitrix\Im\Color).
# The im user object's `phones` keys and the user fields they come from.
IM_PHONES = (("work_phone", "WORK_PHONE"), ("personal_mobile", "PERSONAL_MOBILE"),
             ("personal_phone", "PERSONAL_PHONE"), ("inner_phone", "UF_PHONE_INNER"))
COLORS = ("#df532d", "#64a513", "#4ba984", "#4ba5c3", "#3e99ce", "#8474c8", "#1eb4aa",
          "#f76187", "#58cc47", "#ab7761", "#29619b", "#728f7a", "#ba9c7b", "#556574",
          "#909090", "#fd8f00")
_DIGITS = re.compile(r"[0-9]+")  # PCRE \d without /u: ASCII digits


def chat_id_for(user_id: int) -> int:
    """The synthetic id of a user's system notification chat."""
    return NOTIFY_CHAT_ID_BASE + int(user_id)


# --- im.notify.delete -------------------------------------------------------------------------


@method("im.notify.delete", scope="im",
        params=("ID", "TAG", "SUB_TAG", "CLIENT_ID"))
def notify_delete(call: Call):
    """Delete the caller's notifications by ID, or an app's by TAG / SUB_TAG (B 2.3)."""
    params = call.params
    portal = call.caller.portal
    store = call.emulator.notifications
    if params.get("ID") is not None:  # PHP isset
        value = params["ID"]
        if isinstance(value, (list, dict)) and len(value) != 1:
            ids = tuple(php.intval(item) for item in php.array_values(value))
        else:
            single = php.array_values(value)[0] if isinstance(value, (list, dict)) else value
            ids = (php.intval(single),)
        deleted = store.delete_matching(
            portal, NotificationFilter(recipient_id=call.caller.user_id, ids=ids))
        return bool(deleted)
    if call.caller.auth_type != "oauth" and not php.truthy(params.get("CLIENT_ID")):
        raise errors.access_denied("Client ID not specified")
    key = app_key(call)
    if php.truthy(params.get("TAG")):
        stored = _stored_tag(key, params["TAG"])
        store.delete_matching(portal, NotificationFilter(notify_tag=stored))
        return True
    if php.truthy(params.get("SUB_TAG")):
        stored = _stored_tag(key, params["SUB_TAG"])
        store.delete_matching(portal, NotificationFilter(notify_sub_tag=stored))
        return True
    raise errors.params_error()


# --- im.notify.read, read.list, read.all ----------------------------------------------------


def _reads(params: dict) -> bool:
    """ACTION defaults to 'Y' when not set (isset); only the exact 'Y' reads, else unread."""
    action = params.get("ACTION")
    return action is None or action == "Y"


@method("im.notify.read", scope="im",
        params=("ID", "ACTION", "ONLY_CURRENT"))
def notify_read(call: Call):
    """Mark one notification, or it and every newer one, read or unread (B 2.4)."""
    params = call.params
    if params.get("ID") is None:
        return True  # "if ID is absent, the method will return true without any changes"
    notification_id = php.intval(params["ID"])
    if notification_id < 0:
        return True
    read = _reads(params)
    recipient = call.caller.user_id
    if read and notification_id == 0:
        flt = NotificationFilter(recipient_id=recipient)  # readAllInChat
    elif params.get("ONLY_CURRENT") == "Y":
        flt = NotificationFilter(recipient_id=recipient, ids=(notification_id,))
    else:
        flt = NotificationFilter(recipient_id=recipient, min_id=notification_id)
    call.emulator.notifications.mark_read(call.caller.portal, flt, read=read,
                                          now=call.started_at)
    return True


@method("im.notify.read.list", scope="im",
        params=("IDS", "ACTION"))
def notify_read_list(call: Call):
    """Mark the listed notifications read (ACTION=Y, default) or unread; stops at an id <= 0."""
    ids_param = call.params.get("IDS")
    if not isinstance(ids_param, (list, dict)):
        raise errors.params_error("No IDS param or it is not an array")
    ids: list[int] = []
    for value in php.array_values(ids_param):
        notification_id = php.intval(value)
        if notification_id <= 0:
            break
        ids.append(notification_id)
    if ids:
        call.emulator.notifications.mark_read(
            call.caller.portal,
            NotificationFilter(recipient_id=call.caller.user_id, ids=tuple(ids)),
            read=_reads(call.params), now=call.started_at)
    return True


@method("im.notify.read.all", scope="im",
        params=())
def notify_read_all(call: Call):
    """Mark all the caller's notifications read; `{"result": true, "newCounter": n}` (B 2.6)."""
    store = call.emulator.notifications
    portal, user = call.caller.portal, call.caller.user_id
    store.mark_read(portal, NotificationFilter(recipient_id=user), read=True, now=call.started_at)
    return {"result": True, "newCounter": store.unread_count(portal, user)}


# --- im.notify.answer, im.notify.confirm ----------------------------------------------------


def _notification_id(params: dict) -> int:
    """ID, else NOTIFY_ID (ID wins when both are sent); ID_ERROR when not positive (B 2.7)."""
    value = params.get("ID") if params.get("ID") is not None else params.get("NOTIFY_ID")
    notification_id = php.intval(value)
    if notification_id <= 0:
        raise errors.notify_id_error()
    return notification_id


def _own(call: Call, notification_id: int) -> dict | None:
    row = call.emulator.notifications.get(call.caller.portal, notification_id)
    return row if row is not None and row["recipient_id"] == call.caller.user_id else None


@method("im.notify.answer", scope="im",
        params=("ID", "NOTIFY_ID", "ANSWER_TEXT"))
def notify_answer(call: Call):
    """Quick-reply to one of the caller's notifications (B 2.7, CIMNotify::Answer)."""
    notification_id = _notification_id(call.params)
    text = call.params.get("ANSWER_TEXT")
    if not php.truthy(text):
        raise errors.answer_text_error()
    if php.trim(text) == "" or _own(call, notification_id) is None:
        return {"result_message": False}
    return {"result_message": [ANSWER_DONE]}


@method("im.notify.confirm", scope="im",
        params=("ID", "NOTIFY_ID", "NOTIFY_VALUE"))
def notify_confirm(call: Call):
    """Press a button of a CONFIRM notification: always `false` here (B 2.7).

    REST can only create personal (2) and system (4) notifications, and CIMNotify::Confirm
    answers false for anything that is not the caller's CONFIRM-type notification.
    """
    _notification_id(call.params)
    if not php.truthy(call.params.get("NOTIFY_VALUE")):
        raise errors.notify_value_error()
    return {"result_message": False}


# --- im.notify.get, im.notify.history.search ------------------------------------------------


def _last_id(params: dict) -> int | None:
    """LAST_ID if sent; LAST_ID_STRING unless it is all digits (preg_match('/^\\d+$/'))."""
    value = params.get("LAST_ID")
    if value is None:
        return None
    text = php.to_str(value)
    if not _DIGITS.fullmatch(text):
        raise errors.last_id_string()
    return min(int(text), php.INT_MAX)


def _limit(params: dict) -> int:
    limit = php.intval(params.get("LIMIT"))
    return PAGE_LIMIT if limit <= 0 else min(limit, PAGE_LIMIT)


def notification_object(row: dict, call: Call, *, convert: bool) -> dict:
    """One notification as im.notify.get shows it (DOC:get key order)."""
    zone = call.emulator.zone
    module, event = row["module"] or REST_MODULE, row["event"] or REST_EVENT
    return {
        "id": row["id"],
        "chat_id": chat_id_for(row["recipient_id"]),
        "author_id": row["sender_id"] or 0,
        "date": datetime.fromtimestamp(int(row["created_at"]), zone).isoformat(
            timespec="seconds"),
        "notify_type": row["notify_type"],
        "notify_module": module,
        "notify_event": event,
        "notify_tag": row["notify_tag"] or "",
        "notify_sub_tag": row["notify_sub_tag"] or "",
        "notify_title": "",
        "setting_name": f"{module}|{event}",
        "text": render_text(row["message"] or "") if convert else (row["message"] or ""),
        "notify_read": "Y" if row["is_read"] else "N",
        "params": {"ATTACH": [row["attach"]]} if row["attach"] else None,
    }


_BB_SIMPLE = re.compile(r"\[(b|i|u|s)\](.*?)\[/\1\]", re.IGNORECASE | re.DOTALL)
_BB_URL = re.compile(r"\[url=(https?://[^\]\s\"'<>]+)\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL)


def render_text(message: str) -> str:
    """CONVERT_TEXT=Y: the text as HTML (escaped; [B] [I] [U] [S] [URL=…] and newlines)."""
    html = escape(message, quote=True)
    for _ in range(3):  # nested tags
        html = _BB_SIMPLE.sub(lambda m: f"<{m.group(1).lower()}>{m.group(2)}"
                                        f"</{m.group(1).lower()}>", html)
    html = _BB_URL.sub(lambda m: f'<a href="{m.group(1)}" target="_blank">{m.group(2)}</a>', html)
    return html.replace("\n", "<br />")


def user_object(record: dict) -> dict:
    """An author as the im user object (DOC:get example and _includes/user-object-tables.md),
    from the same user record user.get answers (b24emu.methods.users.user_record).

    Presence agrees with user.get: `status` is "online" while IS_ONLINE is "Y", else "offline",
    and `last_activity_date` is LAST_ACTIVITY_DATE (`false` when the user has none). b24emu keeps
    no avatars: those are the documented empty values.
    """
    full_name = " ".join(part for part in (record["NAME"], record["LAST_NAME"]) if part)
    gender = php.to_str(record.get("PERSONAL_GENDER")).upper()
    phones = {key: php.to_str(record[field]) for key, field in IM_PHONES
              if php.to_str(record.get(field))}
    return {
        "id": int(record["ID"]),
        "active": bool(record["ACTIVE"]),
        "name": full_name,
        "first_name": record["NAME"],
        "last_name": record["LAST_NAME"],
        "work_position": php.to_str(record.get("WORK_POSITION")),
        "color": COLORS[int(record["ID"]) % len(COLORS)],
        "avatar": "",
        "avatar_hr": "",
        "gender": gender if gender in ("M", "F") else "",  # "M", "F" or empty (docs)
        "birthday": _birthday(record.get("PERSONAL_BIRTHDAY")),
        "extranet": record.get("USER_TYPE") == "extranet",
        "network": False,
        "bot": False,
        "connector": False,
        "external_auth_id": "default",
        "status": "online" if record.get("IS_ONLINE") == "Y" else "offline",
        "idle": False,
        "last_activity_date": record.get("LAST_ACTIVITY_DATE") or False,
        "mobile_last_date": False,
        "desktop_last_date": False,
        "absent": False,
        "departments": list(record["UF_DEPARTMENT"]),
        "phones": phones or False,
        "bot_data": None,
        "type": "user",
        "website": php.to_str(record.get("PERSONAL_WWW")),
        "email": record.get("EMAIL", ""),
    }


def _birthday(value) -> str:
    """ "DD-MM" from an ISO birthday, or an empty string (docs)."""
    text = php.to_str(value)
    return f"{text[8:10]}-{text[5:7]}" if len(text) >= 10 else ""


def _authors(call: Call, rows: list[dict]) -> list[dict]:
    """The user objects of the page's authors, in order of first appearance (system: none)."""
    seen: list[int] = []
    for row in rows:
        if row["sender_id"] and row["sender_id"] not in seen:
            seen.append(row["sender_id"])
    if not seen:
        return []
    records = {int(record["ID"]): record for record in users.portal_records(call)}
    return [user_object(records[user_id]) for user_id in seen if user_id in records]


@method("im.notify.get", scope="im", private=True,
        params=("LAST_ID", "LAST_TYPE", "LIMIT", "CONVERT_TEXT"))
def notify_get(call: Call):
    """A page of the caller's notifications, newest first (B 2.8, DOC:get).

    Paging: LAST_ID with LAST_TYPE returns the notifications older than LAST_ID. LAST_TYPE 1
    ("confirmations stage") and 3 behave the same because REST notifications are never
    confirmations.
    """
    params = call.params
    if (params.get("LAST_ID") is None) != (params.get("LAST_TYPE") is None):
        raise errors.last_id_and_last_type()
    last_id = _last_id(params)
    portal, user = call.caller.portal, call.caller.user_id
    store = call.emulator.notifications
    rows = store.query(portal, NotificationFilter(recipient_id=user, below_id=last_id or None),
                       limit=_limit(params))
    result = {
        "notifications": [notification_object(row, call, convert=params.get("CONVERT_TEXT") == "Y")
                          for row in rows],
        "users": _authors(call, rows),
    }
    total = store.count_matching(portal, NotificationFilter(recipient_id=user))
    if total == 0:
        return result  # no system chat messages: only `notifications` and `users` (DOC:get)
    return {"total_count": total, "total_unread_count": store.unread_count(portal, user),
            "chat_id": chat_id_for(user), **result}


def _day_range(value, zone) -> tuple[float, float] | None:
    """[start, end) of the portal-zone day of an ISO 8601 date, or None if unreadable."""
    moment = _parse_date(value, zone)
    if moment is None:
        return None
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def _parse_date(value, zone) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


@method("im.notify.history.search", scope="im", private=True,
        params=("SEARCH_TEXT", "SEARCH_TYPE", "SEARCH_TYPES", "SEARCH_DATE", "SEARCH_DATE_FROM",
                "SEARCH_DATE_TO", "SEARCH_AUTHORS", "GROUP_TAG", "LAST_ID", "LIMIT"))
def notify_history_search(call: Call):
    """Search the caller's notifications by text, type, day, authors (B 2.9, DOC:history).

    SEARCH_TEXT (trimmed, as IMREST measures it) is a case-insensitive substring of the text;
    SEARCH_TYPE / SEARCH_TYPES are "module|event" values; SEARCH_DATE selects that day in the
    portal's zone; SEARCH_DATE_FROM and SEARCH_DATE_TO a range; SEARCH_AUTHORS author ids; GROUP_TAG
    a stored tag, exactly as im.notify.get shows it (the last five from DOC:history; IMREST
    checks only SEARCH_TYPE and SEARCH_DATE). Paging with
    LAST_ID (older ids). LIMIT above 50 is 50; zero, negative or absent is 50.
    """
    params = call.params
    text = php.trim(params.get("SEARCH_TEXT"))  # mb_strlen(trim(SEARCH_TEXT)) < 3 (IMREST)
    narrowed = any(php.truthy(params.get(name)) for name in (
        "SEARCH_TYPE", "SEARCH_DATE", "SEARCH_TYPES", "SEARCH_AUTHORS")) or (
        php.truthy(params.get("SEARCH_DATE_FROM")) and php.truthy(params.get("SEARCH_DATE_TO")))
    if not narrowed and len(text) < 3:
        raise errors.search_text_error()
    last_id = _last_id(params)
    zone = call.emulator.zone
    conditions: dict = {"recipient_id": call.caller.user_id, "below_id": last_id or None}
    if text:
        conditions["text"] = text
    types = []
    if php.truthy(params.get("SEARCH_TYPE")):
        types.append(php.to_str(params["SEARCH_TYPE"]))
    if isinstance(params.get("SEARCH_TYPES"), (list, dict)):
        types.extend(php.to_str(item) for item in php.array_values(params["SEARCH_TYPES"]))
    if types and f"{REST_MODULE}|{REST_EVENT}" not in types:
        conditions["ids"] = ()  # b24emu only holds rest|rest_notify notifications
    if php.truthy(params.get("SEARCH_DATE")):
        day = _day_range(params["SEARCH_DATE"], zone)
        if day is None:
            conditions["ids"] = ()
        else:
            conditions.update(since=day[0], until=day[1])
    elif php.truthy(params.get("SEARCH_DATE_FROM")) and php.truthy(params.get("SEARCH_DATE_TO")):
        start = _parse_date(params["SEARCH_DATE_FROM"], zone)
        end = _parse_date(params["SEARCH_DATE_TO"], zone)
        if start is None or end is None:
            conditions["ids"] = ()
        else:
            conditions.update(since=start.timestamp(), until=end.timestamp())
    if php.truthy(params.get("GROUP_TAG")):
        conditions["notify_tag"] = php.to_str(params["GROUP_TAG"])  # the stored tag (DOC:history)
    if isinstance(params.get("SEARCH_AUTHORS"), (list, dict)):
        conditions["sender_ids"] = tuple(
            php.intval(item) for item in php.array_values(params["SEARCH_AUTHORS"]))
    flt = NotificationFilter(**conditions)
    store = call.emulator.notifications
    rows = store.query(call.caller.portal, flt, limit=_limit(params))
    result: dict = {"chat_id": chat_id_for(call.caller.user_id)}
    if last_id is None:
        result["total_results"] = store.count_matching(call.caller.portal, flt)
    result["notifications"] = [
        notification_object(row, call, convert=params.get("CONVERT_TEXT") == "Y") for row in rows]
    result["users"] = _authors(call, rows)
    return result


# --- im.notify.schema.get, im.counters.get --------------------------------------------------


@method("im.notify.schema.get", scope="im", private=True,
        params=())
def notify_schema_get(call: Call):
    """The notification types by module: b24emu's notifications are rest|rest_notify (B 2.10)."""
    return {module: {**entry, "LIST": [dict(item) for item in entry["LIST"]]}
            for module, entry in SCHEMA.items()}


def _lower_keys(value):
    """Bitrix\\Im\\Common::toJson: keys lower-cased all the way down."""
    if isinstance(value, dict):
        return {(key.lower() if isinstance(key, str) else key): _lower_keys(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


@method("im.counters.get", scope="im", upper_keys=False,
        params=("ONLY_COUNTER", "JSON"))
def counters_get(call: Call):
    """Unread counters: NOTIFY is the caller's unread notifications; no chats here (B 2.11).

    Parameters are case-sensitive: ONLY_COUNTER (truthy) returns only TYPE; JSON=Y lower-cases
    the keys. Empty maps are written as `[]`, as PHP writes an empty array.
    """
    notify = call.emulator.notifications.unread_count(call.caller.portal, call.caller.user_id)
    messenger = 0  # b24emu has no chats or dialogs
    counters: dict = {"TYPE": {"ALL": notify + messenger, "NOTIFY": notify, "CHAT": 0,
                               "LINES": 0, "DIALOG": 0, "MESSENGER": messenger}}
    if not php.truthy(call.params.get("ONLY_COUNTER")):
        counters.update({"CHAT": {}, "CHAT_MUTED": {}, "CHAT_UNREAD": {}, "LINES": {},
                         "DIALOG": {}, "DIALOG_UNREAD": {}})
    return _lower_keys(counters) if call.params.get("JSON") == "Y" else counters
