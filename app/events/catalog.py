"""Which events a portal offers, by scope: what `events` lists and `event.bind` accepts.

The names and their order are the `events` method's documented answer
(api-reference/events/events.md). The REST module's own events are `_global` (bindable with any
scope); the others need their scope. Per-event options follow the REST module's description of
`onOfflineEvent` and the OAuth events: which get a refresh token, which cannot be offline.
"""

from __future__ import annotations

from b24emu import php

GLOBAL_SCOPE = "_global"  # the registry's GLOBAL_SCOPE (imported from there it would cycle)

_CRM_ENTITIES = ("LEAD", "DEAL", "COMPANY", "CONTACT", "QUOTE")
_CRUD = ("ADD", "UPDATE", "DELETE")
_USERFIELD = ("USERFIELDADD", "USERFIELDUPDATE", "USERFIELDDELETE", "USERFIELDSETENUMVALUES")


def _crm_events() -> tuple[str, ...]:
    names = ["ONCRMINVOICEADD", "ONCRMINVOICEUPDATE", "ONCRMINVOICEDELETE",
             "ONCRMINVOICESETSTATUS"]
    for entity in _CRM_ENTITIES:
        names += [f"ONCRM{entity}{action}" for action in _CRUD]
        if entity == "DEAL":
            names.append("ONCRMDEALMOVETOCATEGORY")
        names += [f"ONCRM{entity}{action}" for action in _USERFIELD]
    names += [f"ONCRMINVOICE{action}" for action in _USERFIELD]
    for entity in ("CURRENCY", "PRODUCT", "PRODUCTPROPERTY", "PRODUCTSECTION", "ACTIVITY"):
        names += [f"ONCRM{entity}{action}" for action in _CRUD]
    names += [f"ONCRMREQUISITE{action}" for action in _CRUD]
    names += [f"ONCRMREQUISITE{action}" for action in _USERFIELD]
    names += [f"ONCRMBANKDETAIL{action}" for action in _CRUD]
    names += ["ONCRMADDRESSREGISTER", "ONCRMADDRESSUNREGISTER"]
    names += [f"ONCRMMEASURE{action}" for action in _CRUD]
    for entity in ("DEALRECURRING", "INVOICERECURRING"):
        names += [f"ONCRM{entity}{action}" for action in (*_CRUD, "EXPOSE")]
    for entity in ("TIMELINECOMMENT", "DYNAMICITEM"):
        names += [f"ONCRM{entity}{action}" for action in _CRUD]
    names += [f"ONCRMDYNAMICITEM{action}_147" for action in _CRUD]
    names += [f"ONCRMTYPE{action}" for action in _CRUD]
    names += [f"ONCRMDOCUMENTGENERATORDOCUMENT{action}" for action in _CRUD]
    return tuple(names)


EVENTS_BY_SCOPE: dict[str, tuple[str, ...]] = {
    GLOBAL_SCOPE: ("ONAPPUNINSTALL", "ONAPPINSTALL", "ONAPPUPDATE", "ONAPPPAYMENT", "ONAPPTEST",
                   "ONAPPMETHODCONFIRM", "ONOFFLINEEVENT"),
    "user": ("ONUSERADD",),
    # The portal's user_basic and user_brief scopes declare OnUserAdd too.
    "user_basic": ("ONUSERADD",),
    "user_brief": ("ONUSERADD",),
    "crm": _crm_events(),
    "task": ("ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE", "ONTASKCOMMENTADD",
             "ONTASKCOMMENTUPDATE", "ONTASKCOMMENTDELETE"),
}
# Events whose handler receives a refresh token too (the REST module's sendRefreshToken).
SENDS_REFRESH_TOKEN = frozenset({"ONAPPINSTALL", "ONAPPUPDATE", "ONOFFLINEEVENT"})
# Events that cannot be bound offline (disableOffline): "Offline event cannot be registered…".
ONLINE_ONLY = frozenset({"ONOFFLINEEVENT"})
# Options an event accepts in event.bind (allowOptions), with their types.
ALLOWED_OPTIONS: dict[str, dict[str, str]] = {"ONOFFLINEEVENT": {"minTimeout": "int"}}


def events_of(scopes) -> list[str]:
    """The events of these scopes, in the portal's order (scope by scope, as listed above),
    each once (ONUSERADD belongs to three scopes)."""
    wanted = set(scopes)
    return list(dict.fromkeys(name for scope, names in EVENTS_BY_SCOPE.items()
                              if scope in wanted for name in names))


def bindable(event: str, scopes) -> bool:
    """Whether an app with these scopes may bind `event` (its scopes plus `_global`)."""
    return event in events_of({*scopes, GLOBAL_SCOPE})


def clean_options(event: str, options) -> dict:
    """event.bind `options`: only the ones the event allows, converted as the portal does."""
    allowed = ALLOWED_OPTIONS.get(event, {})
    if not isinstance(options, dict):
        return {}
    cleaned = {}
    for key, kind in allowed.items():
        if key in options:
            if kind == "int":
                cleaned[key] = php.intval(options[key])
            elif isinstance(options[key], str):
                cleaned[key] = options[key]
    return cleaned
