"""`user.current` and `user.get` (scope `user`; B 7.5, api-reference/user/).

Users come from the portal's fixture. `user.get` reads its parameters case-insensitively
(`SORT`/`sort`, `ORDER`, `FILTER`, `ADMIN_MODE`); filter keys are upper-cased too, and filter
fields sent at the top level (the legacy form, `{"UF_DEPARTMENT": 1}`) count when no FILTER is
sent. The page size is fixed at 50; `start` is the offset; `total` and `next` go to the top of
the envelope.
"""

from __future__ import annotations

import re
from datetime import datetime

from b24emu import php
from b24emu.methods.registry import Call, method, upper_keys
from b24emu.rest.envelope import Page

PAGE_SIZE = 50
# Longest first, so "!=%" wins over "!=" and "!" (documented prefixes of user.get FILTER).
FILTER_PREFIXES = ("!=%", "!%=", ">=", "<=", "!=", "!@", "!%", "=%", "%=", ">", "<", "@", "%",
                   "=", "!")
# Top-level keys of user.get that are not filter fields.
CONTROL_KEYS = {"SORT", "ORDER", "FILTER", "ADMIN_MODE", "SELECT", "IMAGE_RESIZE"}
# The fields the limited user scopes may read (api-reference/user/index.md, Rest 21.600.0);
# `user` reads them all. USER_TYPE is not personal data and is always sent.
USER_BASIC_FIELDS = frozenset({
    "ID", "ACTIVE", "NAME", "LAST_NAME", "SECOND_NAME", "EMAIL", "IS_ONLINE", "TIME_ZONE",
    "DATE_REGISTER", "PERSONAL_GENDER", "PERSONAL_BIRTHDAY", "WORK_POSITION",
    "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT", "USER_TYPE"})
USER_BRIEF_FIELDS = USER_BASIC_FIELDS - {"EMAIL"}


def user_fields(user: dict, zone) -> dict:
    """A user as user.get / user.current answer it (the fields a `user` scope grants)."""
    return {
        "ID": str(user["id"]),
        "ACTIVE": bool(user["active"]),
        "NAME": user["name"] or "",
        "LAST_NAME": user["last_name"] or "",
        "SECOND_NAME": "",
        "EMAIL": user["email"] or "",
        "LAST_LOGIN": "",  # b24emu keeps no log-in history: CRestUtil::ConvertDateTime('') is ''
        "DATE_REGISTER": _iso(user["date_register"], zone),
        "TIME_ZONE": user["time_zone"] or "",
        "IS_ONLINE": "N",
        "PERSONAL_GENDER": user["gender"] or "",
        "PERSONAL_BIRTHDAY": "",
        "WORK_POSITION": "",
        "UF_EMPLOYMENT_DATE": "",
        "UF_DEPARTMENT": [int(department) for department in user["departments"]],
        "USER_TYPE": "employee",
    }


def _iso(value: str | None, zone) -> str:
    """An ISO date from the fixture, shown in the portal's zone like the portal's dates."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone).isoformat(timespec="seconds")


def visible_fields(scopes) -> frozenset[str] | None:
    """The fields a caller's scopes let it read: None for all (`user`)."""
    if "user" in scopes:
        return None
    return USER_BASIC_FIELDS if "user_basic" in scopes else USER_BRIEF_FIELDS


def _for_caller(call: Call, user: dict) -> dict:
    fields = user_fields(user, call.emulator.zone)
    visible = visible_fields(call.caller.scopes)
    if visible is None:
        return fields
    return {key: value for key, value in fields.items() if key in visible}


@method("user.current", scope="user",
        params=())
def user_current(call: Call) -> dict:
    """The calling user (the webhook's owner or the token's user)."""
    user = call.emulator.portals.user(call.caller.portal, call.caller.user_id)
    return _for_caller(call, user)


@method("user.get", scope="user",
        params=("FILTER", "sort", "order", "ADMIN_MODE", "start"))
def user_get(call: Call) -> Page:
    """Users matching FILTER, sorted, 50 per page from `start`."""
    params = call.params
    filters = params.get("FILTER")
    if isinstance(filters, dict):
        conditions = upper_keys(filters)
    else:
        conditions = {key: value for key, value in params.items() if key not in CONTROL_KEYS}
    # a filter on a field the caller may not read is ignored, like an unknown field
    rows = [_for_caller(call, user) for user in call.emulator.portals.users(call.caller.portal)]
    for key, value in conditions.items():
        if isinstance(key, str):
            rows = _apply_filter(rows, key, value)
    rows = _sort(rows, params.get("SORT"), params.get("ORDER"))
    start = max(0, php.intval(call.start)) if call.start is not None else 0
    page = rows[start:start + PAGE_SIZE]
    next_start = start + PAGE_SIZE if start + PAGE_SIZE < len(rows) else None
    return Page(page, total=len(rows), next_start=next_start)


def _split(key: str) -> tuple[str, str]:
    for prefix in FILTER_PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix):]
    return "", key


def _apply_filter(rows: list[dict], key: str, value) -> list[dict]:
    """Keep the rows one filter condition accepts; unknown fields are ignored (as the portal)."""
    prefix, field = _split(key)
    if field == "NAME_SEARCH":
        needle = php.to_str(value).strip().lower()
        return [row for row in rows if not needle or any(
            needle in row[name].lower() for name in ("NAME", "LAST_NAME", "EMAIL"))]
    if not rows or field not in rows[0]:
        return rows
    negate = prefix.startswith("!")
    core = prefix.lstrip("!")
    values = php.array_values(value) if isinstance(value, (list, dict)) else [value]
    return [row for row in rows
            if _matches(field, row[field], core, values) != negate]


def _matches(field: str, actual, operator: str, values: list) -> bool:
    """Whether one field value passes `operator` against any of the filter values."""
    if field == "UF_DEPARTMENT":
        wanted = {php.intval(item) for item in values}
        return bool(wanted & set(actual)) if operator in ("", "=", "@") else False
    if field == "ACTIVE":
        wanted = {_yes(item) for item in values}
        return actual in wanted
    if field == "ID":
        number = int(actual)
        targets = [php.intval(item) for item in values]
        return any(_compare(number, operator, target) for target in targets)
    text = php.to_str(actual).lower()
    return any(_compare_text(text, operator, php.to_str(item).lower()) for item in values)


def _yes(value) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("Y", "TRUE", "1")
    return bool(value)


def _compare(number: int, operator: str, target: int) -> bool:
    if operator == ">":
        return number > target
    if operator == ">=":
        return number >= target
    if operator == "<":
        return number < target
    if operator == "<=":
        return number <= target
    return number == target  # "", "=", "@" and the LIKE forms on a number


def _compare_text(text: str, operator: str, target: str) -> bool:
    if operator == "%":
        return target in text
    if operator in ("", "=", "=%", "%=", "@"):
        return _like(text, target)
    if operator in (">", ">=", "<", "<="):
        return _compare_str(text, operator, target)
    return text == target


def _compare_str(text: str, operator: str, target: str) -> bool:
    return {">": text > target, ">=": text >= target, "<": text < target,
            "<=": text <= target}[operator]


def _like(text: str, pattern: str) -> bool:
    """SQL LIKE, case-insensitive: `%` any run, `_` one character."""
    regex = "".join(".*" if char == "%" else "." if char == "_" else re.escape(char)
                    for char in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _sort(rows: list[dict], sort, order) -> list[dict]:
    """Sort by one field (default ID), `order` ASC or DESC."""
    field = php.to_str(sort).upper() if sort is not None else "ID"
    if not rows or field not in rows[0]:
        field = "ID"
    descending = php.to_str(order).strip().upper() == "DESC"

    def key(row):
        value = row[field]
        if field == "ID":
            return int(value)
        if isinstance(value, list):
            return tuple(value)
        return php.to_str(value).lower()

    return sorted(rows, key=key, reverse=descending)
