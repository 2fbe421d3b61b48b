"""`user.current`, `user.get` and `user.search` (scopes `user`, `user_basic`, `user_brief`;
api-reference/user/).

A fixture user carries any documented user field and any `UF_*` field (b24emu.user_fields). The
answer holds the fields the caller's scope reads (user-scope.md), in the portal's order; a field
the user has no value for is left out, except the ones a portal always sends (user-get.md's
example). Dates are ISO 8601 in the portal's zone; `TIMESTAMP_X` and `LAST_ACTIVITY_DATE` are sent
as `{}`, the empty object a portal's DateTime becomes in JSON (user-get.md, user-search.md), but
filter and sort on their values. `IS_ONLINE` is "Y" while the last activity is at most 1440 s old
on the emulator's clock (CUser::GetSecondsForLimitOnline with PHP's default session lifetime),
unless the fixture sets it.

`user.get` and `user.search` read their parameters case-insensitively (`FILTER`/`filter`,
`SORT`, `ORDER`, `SELECT`, `ADMIN_MODE`); filter fields sent at the top level (the docs' first
example, `{"UF_DEPARTMENT": 1, "SORT": "ID", ...}`) count when no FILTER array is sent. Filtering,
`select` and paging are the list engine's (b24emu.methods.listing); `start` is read as the ORM
reads it (Api\\User::userGet, getNavData($start, true)): a raw offset, so `start=1` skips the
first user and `next` is `start` plus the users sent; `start=-1` answers `total` 0 (any other
negative `start` reads from the first user and counts). A page with no user (nothing matches, or
`start` past the end) is `"result": []` with no `total` and no `next`: prepareUserGetResult
returns an empty result untouched. prepareUserFilter keeps only conditions on allowed field
names, so a filter on a field the caller's scope does not read, on a field no user has and the
docs do not list, on UF_DEPARTMENT_NAME outside user.search, `LOGIC` and integer-keyed
sub-filters are all ignored (the kept conditions are ANDed). Values go through prepareUserValue:
ACTIVE and IS_ONLINE become "Y"/"N" (`($v && $v !== 'N') ? 'Y' : 'N'`, so `false` means "N"), ID
an integer; an empty value ("", false, null) matches an empty field, so `{"!UF_DEPARTMENT":
false}` finds the users with a department. Sorting follows prepareUserGetOrder: `sort` and
`order` both non-empty strings, else ID ascending.
"""

from __future__ import annotations

import re
from datetime import datetime

from b24emu import php
from b24emu import user_fields as uf
from b24emu.methods import listing
from b24emu.methods.registry import Call, method, upper_keys
from b24emu.rest.envelope import Page

# Top-level keys of user.get that are not filter fields.
CONTROL_KEYS = frozenset({"SORT", "ORDER", "FILTER", "ADMIN_MODE", "SELECT", "IMAGE_RESIZE"})
ONLINE_SECONDS = 1440
# Sent as `{}` (a PHP DateTime object), filtered on their dates.
OBJECT_DATES = ("TIMESTAMP_X", "LAST_ACTIVITY_DATE")
# Filter-only fields: quick search (user.get), department names (user.search).
NAME_SEARCH = "NAME_SEARCH"
DEPARTMENT_NAME = "UF_DEPARTMENT_NAME"
# user.search: FIND looks in these; without FIND, these match from the start of the value
# ("right LIKE", user-search.md).
SEARCHED_FIELDS = ("NAME", "LAST_NAME", "SECOND_NAME", "WORK_POSITION", DEPARTMENT_NAME)
RIGHT_LIKE_FIELDS = ("NAME", "LAST_NAME", "WORK_POSITION", DEPARTMENT_NAME)
_WORDS = re.compile(r"\w+", re.UNICODE)
_KEY = re.compile(r"([^A-Za-z]*)(.*)", re.DOTALL)
# prepareUserValue: `($value && $value !== 'N') ? 'Y' : 'N'`.
YES_NO_FIELDS = ("ACTIVE", "IS_ONLINE")
# prepareUserFilter: no prefix means `=` for these.
EXACT_FIELDS = ("USER_TYPE", "ACTIVE")


def user_record(user: dict, *, zone, now: float, departments: dict[int, str]) -> dict:
    """Every field of a user as the `user` scope reads it, plus the department names (for
    user.search's filter). Dates are ISO strings here; `answer` turns a record into JSON."""
    extra = user.get("extra") or {}
    values: dict = {
        "ID": str(user["id"]),
        "ACTIVE": bool(user["active"]),
        "NAME": user["name"] or "",
        "LAST_NAME": user["last_name"] or "",
        "EMAIL": user["email"] or "",
        "DATE_REGISTER": _iso(user["date_register"], zone),
        "PERSONAL_GENDER": user["gender"] or "",
        "UF_DEPARTMENT": [int(number) for number in user["departments"]],
    }
    if user.get("time_zone") is not None:
        values["TIME_ZONE"] = user["time_zone"]
    for key, value in extra.items():
        values[key] = _iso(value, zone) if key in uf.DATE_FIELDS else value
    values.setdefault("TIMESTAMP_X", values["DATE_REGISTER"])
    values.setdefault(uf.USER_TYPE, "employee")
    for field in uf.ALWAYS_SENT:
        values.setdefault(field, "")
    if "IS_ONLINE" not in extra:
        values["IS_ONLINE"] = _online(values["LAST_ACTIVITY_DATE"], now)
    record = {field: values[field] for field in uf.USER_FIELDS if field in values}
    record.update((key, value) for key, value in values.items() if uf.is_custom(key))
    record[uf.USER_TYPE] = values[uf.USER_TYPE]
    record[DEPARTMENT_NAME] = [departments[number] for number in record["UF_DEPARTMENT"]
                               if number in departments]
    return record


def _iso(value, zone) -> str:
    """An ISO date from the fixture, shown in the portal's zone like the portal's dates."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone).isoformat(timespec="seconds")


def _online(last_activity: str, now: float) -> str:
    try:
        seen = datetime.fromisoformat(last_activity).timestamp()
    except ValueError:  # none (or not a date)
        return "N"
    return "Y" if 0 <= now - seen <= ONLINE_SECONDS else "N"


def visible(record: dict, scopes) -> dict:
    """The record as the caller's scopes may read it (user-scope.md)."""
    standard = uf.readable(scopes)
    custom = uf.reads_custom_fields(scopes)
    return {key: value for key, value in record.items()
            if key == DEPARTMENT_NAME
            or (uf.is_custom(key) and custom)
            or (not uf.is_custom(key) and (standard is None or key in standard))}


def answer(record: dict) -> dict:
    """A record as JSON answers it: the date objects as `{}`, no filter-only fields."""
    return {key: php.EMPTY_OBJECT if key in OBJECT_DATES else value
            for key, value in record.items() if key != DEPARTMENT_NAME}


def portal_records(call: Call) -> list[dict]:
    """Every user of the caller's portal as a full record (by id)."""
    emulator = call.emulator
    rows = emulator.portals.departments(call.caller.portal)
    departments = {row["id"]: row["name"] for row in rows}
    now = emulator.clock.now()
    return [user_record(user, zone=emulator.zone, now=now, departments=departments)
            for user in emulator.portals.users(call.caller.portal)]


@method("user.current", scope="user",
        params=())
def user_current(call: Call) -> dict:
    """The calling user (the webhook's owner or the token's user)."""
    record = next(record for record in portal_records(call)
                  if record["ID"] == str(call.caller.user_id))
    return answer(visible(record, call.caller.scopes))


@method("user.get", scope="user",
        params=("FILTER", "sort", "order", "select", "ADMIN_MODE", "IMAGE_RESIZE", "start"))
def user_get(call: Call) -> Page:
    """Users matching FILTER, sorted, 50 per page from `start`."""
    return _user_list(call, _conditions(call.params))


@method("user.search", scope="user",
        params=("FILTER", "sort", "order", "select", "ADMIN_MODE", "start"))
def user_search(call: Call) -> Page:
    """user.get with FIND (name, position, department words) and right-LIKE name filters; FIND
    and the other conditions must all hold (userGet merges FIND's search filter into the
    prepared filter)."""
    conditions = _conditions(call.params)
    rewritten = {}
    for key, value in conditions.items():
        if key in RIGHT_LIKE_FIELDS and isinstance(value, str):
            rewritten[f"=%{key}"] = value if "%" in value else value + "%"
        elif key != "FIND":
            rewritten[key] = value
    find = next((value for key, value in conditions.items() if key == "FIND"), None)
    if find is not None and php.trim(find) != "":
        words = [word.lower() for word in _WORDS.findall(php.to_str(find))]
        return _user_list(call, rewritten, lambda record: _found(record, words), search=True)
    return _user_list(call, rewritten, search=True)


def _found(record: dict, words: list[str]) -> bool:
    """Every word of FIND starts a word of one of the searched fields (the full-text mode)."""
    haystack = []
    for field in SEARCHED_FIELDS:
        value = record.get(field, "")
        for text in (value if isinstance(value, list) else [value]):
            haystack += [word.lower() for word in _WORDS.findall(php.to_str(text))]
    return all(any(candidate.startswith(word) for candidate in haystack) for word in words)


def _conditions(params: dict) -> dict:
    """FILTER (upper-cased keys), or the legacy top-level filter fields when FILTER is not an
    array."""
    filters = params.get("FILTER")
    if isinstance(filters, dict):
        return upper_keys(filters)
    if isinstance(filters, list):
        return dict(enumerate(filters))
    return {key: value for key, value in params.items()
            if isinstance(key, str) and key not in CONTROL_KEYS}


def _user_list(call: Call, conditions: dict, keep=None, *, search: bool = False) -> Page:
    scopes = call.caller.scopes
    records = [visible(record, scopes) for record in portal_records(call)]
    filterable = _filterable(scopes)
    # prepareUserFilter's allowed names: the fields the scope reads, the portal's custom fields
    # (those its users have) when the scope reads them, UF_DEPARTMENT_NAME in user.search only
    allowed = filterable | {key for record in records for key in record
                            if uf.is_custom(key) and key != DEPARTMENT_NAME}
    if not search:
        allowed.discard(DEPARTMENT_NAME)
    if keep is not None:
        records = [record for record in records if keep(record)]
    conditions = _clean(conditions, allowed)
    if not any(isinstance(key, str) and _KEY.match(key).group(2).upper() == uf.USER_TYPE
               for key in conditions):
        # user-get.md: e-mail users are left out (unless USER_TYPE asks for them)
        records = [record for record in records if record.get(uf.USER_TYPE) != "email"]
    words = conditions.pop(NAME_SEARCH, None)
    if words is not None:
        records = [record for record in records if _name_search(record, words)]
    page = listing.list_page(records, filter=conditions, order=_order(call.params, filterable),
                             select=call.params.get("SELECT"), start=call.start,
                             errors=listing.LENIENT, paging=listing.OFFSET)
    page.items = [answer(record) for record in page.items]
    if not page.items:
        # prepareUserGetResult returns an empty result untouched: no `total`, no `next`
        page.total = page.next_start = None
    return page


def _filterable(scopes) -> set[str]:
    """The standard fields and filter-only names a caller may filter and sort on."""
    standard = uf.readable(scopes)
    fields = set(uf.STANDARD_FIELDS if standard is None else standard)
    fields |= {uf.USER_TYPE, DEPARTMENT_NAME, NAME_SEARCH, "IS_ONLINE"}
    return fields


def _clean(conditions: dict, allowed: set[str]) -> dict:
    """prepareUserFilter: keep only the conditions on `allowed` field names (`in_array` strict).
    Everything else is dropped, `LOGIC` and integer keys (sub-filters) included, so the kept
    conditions are all ANDed."""
    kept: dict = {}
    for key, value in conditions.items():
        if not isinstance(key, str):
            continue
        operation, field = _KEY.match(key).groups()
        field = field.upper()
        if field in allowed:
            if operation == "" and field in EXACT_FIELDS:
                operation = "="  # prepareUserFilter: USER_TYPE and ACTIVE match exactly
            kept[operation + field] = _filter_value(field, value)
    return kept


def _filter_value(field: str, value):
    """A filter value as prepareUserFilter/prepareUserValue passes it to the ORM."""
    if field in YES_NO_FIELDS:
        return "Y" if php.truthy(value) and value != "N" else "N"
    if field == "ID":
        if isinstance(value, (list, dict)) and value:
            return [php.intval(item) for item in php.array_values(value)]
        return php.intval(value) if not isinstance(value, (list, dict)) else 0
    if value is None or value is False:
        return ""  # an empty value: matches an empty (NULL) field
    return value


def _name_search(record: dict, value) -> bool:
    """NAME_SEARCH: every word is found in the name, last name, second name or e-mail."""
    words = [word.lower() for word in php.to_str(value).split()]
    text = " ".join(php.to_str(record.get(field, "")) for field in
                    ("NAME", "LAST_NAME", "SECOND_NAME", "EMAIL")).lower()
    return all(word in text for word in words)


def _order(params: dict, filterable: set[str]) -> dict:
    """prepareUserGetOrder: `sort` (a field) and `order` (ASC/DESC) when both are non-empty
    strings, else ID ascending. So `sort` alone, `order` alone and an object in either (the
    JS SDK's callList sends `order: {ID: "ASC"}`) sort by ID ascending. A field the caller may
    not sort on, or a direction other than DESC, sorts by ID / ascending."""
    sort, direction = params.get("SORT"), params.get("ORDER")
    if not all(isinstance(value, (str, int, float)) and not isinstance(value, bool)
               and php.truthy(value) for value in (sort, direction)):
        return {"ID": "ASC"}
    field = php.to_str(sort).strip().upper()
    if field not in filterable and not uf.CUSTOM_FIELD.match(field):
        field = "ID"
    descending = php.to_str(direction).strip().upper() == "DESC"
    return {field: "DESC" if descending else "ASC"}
