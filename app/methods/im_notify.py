"""im.notify.personal.add, im.notify.system.add and legacy im.notify: one handler (B 1, 2.1-2.2).

Validation order is the portal's (Part A 4): USER_ID/TO, MESSAGE, ATTACH; then a missing or
inactive recipient gives `false`, not an error (Part A 8).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from b24emu import php
from b24emu.methods import attach as attach_rules
from b24emu.methods.registry import Call, method
from b24emu.rest import errors
from b24emu.store.notifications import NOTIFY_FROM, NOTIFY_SYSTEM, NewNotification

MESSAGE_LIMIT = 20000  # CIMMessenger::MESSAGE_LIMIT (B 1.4)
MESSAGE_CUT_SUFFIX = " (...)"
CACHED_KEY_SOURCE = 256  # longest CLIENT_ID (with its prefix) whose app key is remembered


@method("im.notify.personal.add", scope="im",
        params=("USER_ID", "MESSAGE", "MESSAGE_OUT", "TAG", "SUB_TAG", "ATTACH", "CLIENT_ID"))
def personal_add(call: Call):
    """Send a personal notification from the calling user; returns its id."""
    return _notify_add(call, system=False)


@method("im.notify.system.add", scope="im",
        params=("USER_ID", "MESSAGE", "MESSAGE_OUT", "TAG", "SUB_TAG", "ATTACH", "CLIENT_ID"))
def system_add(call: Call):
    """Send a system notification (no sender); returns its id."""
    return _notify_add(call, system=True)


@method("im.notify", scope="im",
        params=("TO", "USER_ID", "MESSAGE", "MESSAGE_OUT", "TYPE", "TAG", "SUB_TAG", "ATTACH",
                "CLIENT_ID"))
def legacy_notify(call: Call):
    """Legacy form: TYPE=SYSTEM sends a system notification, anything else a personal one."""
    # Case-sensitive in_array in the portal's code: "system" is not SYSTEM (B 1.2).
    return _notify_add(call, system=call.params.get("TYPE") == "SYSTEM")


def _notify_add(call: Call, *, system: bool):
    """The shared handler, CIMRestService::notifyAdd."""
    params = call.params
    recipient = php.intval(params["TO"] if params.get("TO") is not None else params.get("USER_ID"))
    if recipient <= 0:
        raise errors.user_id_empty()
    message = php.trim(params.get("MESSAGE"))
    if message == "":
        raise errors.message_empty()
    attach = _checked_attach(call, params.get("ATTACH"))
    message_out = php.trim(params.get("MESSAGE_OUT"))
    if system and call.caller.auth_type == "oauth":
        # An app's system notification is signed with the app's name (B 1.4).
        message = f"{call.caller.app_name}#BR#{message}"
        message_out = f"{call.caller.app_name}#BR#{message_out}" if message_out else ""
    return _store(call, recipient, prepare_message(message), message_out, attach, system)


def _store(call: Call, recipient: int, message: str, message_out: str, attach, system: bool):
    """CIMMessenger::Add: `false` for a missing or inactive recipient or an empty message."""
    caller = call.caller
    user = call.emulator.portals.user(caller.portal, recipient)
    if user is None or not user["active"]:
        return False
    if message == "" and attach is None:
        return False
    key = app_key(call)
    notification = NewNotification(
        portal=caller.portal,
        recipient_id=recipient,
        sender_id=0 if system else caller.user_id,
        notify_type=NOTIFY_SYSTEM if system else NOTIFY_FROM,
        message=message,
        message_out=prepare_message(message_out) if message_out else "",
        notify_tag=_stored_tag(key, call.params.get("TAG")),
        notify_sub_tag=_stored_tag(key, call.params.get("SUB_TAG")),
        attach=attach,
        created_at=call.started_at,
        method=call.method,
        auth_type=caller.auth_type,
        credential=caller.credential,
        request_id=call.request_id,
    )
    return call.emulator.notifications.add(notification)


def _checked_attach(call: Call, value):
    """The normalized ATTACH, ATTACH_OVERSIZE, or ATTACH_ERROR for a truthy invalid one."""
    if not php.truthy(value):
        return None
    attach = attach_rules.normalize_attach(value, attach_id=int(call.started_at))
    if attach is None:
        raise errors.attach_error()
    if attach_rules.attach_json_length(attach) > call.emulator.settings.attach_max_bytes:
        raise errors.attach_oversize()
    return attach


def prepare_message(text: str) -> str:
    """[BR]/#BR# to newlines, trim, and cut past the portal's message limit (B 1.4)."""
    for marker in ("[BR]", "[br]", "#BR#"):
        text = text.replace(marker, "\n")
    text = php.trim(text)
    if len(text) > MESSAGE_LIMIT + len(MESSAGE_CUT_SUFFIX):
        text = text[:MESSAGE_LIMIT] + MESSAGE_CUT_SUFFIX
    return text


def app_key(call: Call) -> str:
    """First 5 hex of md5 of the OAuth client id, or "custom"+CLIENT_ID for a webhook (A 7)."""
    if call.caller.auth_type == "oauth":
        source = call.caller.client_id or ""
    else:
        client_id = php.to_str(call.params.get("CLIENT_ID"))
        source = f"custom{client_id}" if client_id else ""
    if len(source) > CACHED_KEY_SOURCE:  # a cache of 256 huge CLIENT_IDs would hold gigabytes
        return _md5_prefix.__wrapped__(source)
    return _md5_prefix(source)


@lru_cache(maxsize=256)
def _md5_prefix(source: str) -> str:
    """The first 5 hex of md5 (a caller sends the same CLIENT_ID call after call)."""
    return hashlib.md5(source.encode("utf-8")).hexdigest()[:5]


def _stored_tag(key: str, tag) -> str:
    """`MP|<app key>|<TAG>` for a non-empty (PHP !empty) tag, else ""."""
    if not php.truthy(tag):
        return ""
    text = "Array" if isinstance(tag, (list, dict)) else php.to_str(tag)
    return f"MP|{key}|{text}"
