"""The one list engine: `filter`, `order`, `select` and `start` as a portal's lists read them.

Every list method answers through `list_page`: the handler builds its items (dicts keyed by the
field names the API spells, e.g. ``ID``, ``NAME``, ``UF_DEPARTMENT``) and passes the request's
parameters through. What it does, from the docs (settings/how-to-call-rest-api/
list-methods-pecularities.md, api-reference/user/user-get.md, crm/universal/crm-item-list.md)
and the REST module's IRestService:

* **filter**: keys are field names, matched case-insensitively, with an optional prefix:
  none: equal, or LIKE when a text value holds ``%`` (user-get.md's ``{"NAME": "Iv%"}``); ``=``
  exactly equal, ``!``/``!=`` not equal, ``>``, ``>=``, ``<``, ``<=``, ``@`` in,
  ``!@`` not in, ``%`` contains (``?`` too), ``!%`` does not contain, ``=%``/``%=`` LIKE with
  ``%``/``_`` wildcards, ``!=%``/``!%=`` NOT LIKE, ``><``/``!><`` between two values
  (inclusive). An array value means IN (NOT IN under ``!``). Integer keys hold sub-filters with
  ``LOGIC`` ``AND``/``OR`` (crm.item.list's example), up to 32 levels deep (``groups=False``:
  no sub-filters, as IRestService::sanitizeFilter, whose integer keys and ``LOGIC`` are
  ordinary keys and so refused). A field an item
  lacks matches as empty; a multiple field (a list) matches when any of its values does. Both
  sides numeric: numbers; an ISO date on the item: dates (ISO 8601 or the portal's
  ``dd.mm.yyyy``/``mm/dd/yyyy``; a value that is not a date retrieves nothing); else text,
  case-insensitively (MySQL's collation). An empty value is neither greater nor less than
  anything.
* **order**: ``{field: ASC|DESC}``, several keys, stable; ties and the default keep ``ID``
  ascending. Empty values sort first, numbers before text.
* **select**: field names (any case), ``*`` for every field, ``UF_*`` for every ``UF_`` field;
  `always_selected` fields are always kept; none or empty selects everything; names an item
  lacks are skipped without an error.
* **start**: pages as CDBResult does (``paging=PAGES``, IRestService::getNavData($start)):
  page ``intdiv(start, page_size) + 1``, so ``start=1`` is the first page and ``start=60`` the
  second; ``next`` is the next page's offset while more items follow; ``total`` is the count.
  ``paging=OFFSET`` (getNavData($start, true), the ORM-based lists such as user.get) reads
  ``start`` as a raw offset: ``start=1`` skips one item and ``next`` is ``start`` plus the
  items sent. A negative ``start`` is the no-count mode the docs recommend for large exports:
  the first page, ``total`` 0 (setNavData with a count of 0; settings/performance/huge-data.md
  prints ``[total] => 0``) and no ``next``. In OFFSET mode only ``start=-1`` is (userGet
  counts unless ``$nav === -1``): any other negative reads from the first item and counts
  (``start=-5``: ``total`` and ``next`` as for 0). A page past the end is empty (with
  ``total``; user.get sends neither ``total`` nor ``next`` with an empty page, see
  b24emu.methods.users).

Bad input is answered per the method's documented errors (`ListErrors`; the default is the
REST module's IRestService::sanitizeFilter/sanitizeOrder: ``ERROR_ARGUMENT``, HTTP 400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from b24emu import php
from b24emu.rest.envelope import Page
from b24emu.rest.errors import BitrixError

PAGE_SIZE = 50
# How `start` is read: CDBResult page numbers, or the ORM's raw offset.
PAGES, OFFSET = "pages", "offset"
# Every documented filter prefix (user.get, crm.item.list, entity.item.get, sonet_group.get).
OPERATIONS = frozenset({"", "=", "!", "!=", ">", ">=", "<", "<=", "@", "!@", "%", "!%", "=%",
                        "%=", "!=%", "!%=", "><", "!><", "?"})
# IRestService::sanitizeFilter splits a key into its non-letter prefix and the field.
_KEY = re.compile(r"([^A-Za-z]*)(.*)", re.DOTALL)
_NUMERIC = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                       r"(?:Z|[+-]\d{2}:?\d{2})?)?\Z")
_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?\Z")
_SLASHED_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?"
                           r"(?: ?([aApP][mM]))?)?\Z")
_DIRECTIONS = ("ASC", "DESC")
# Sub-filters nested deeper than this are dropped (the recursion stays bounded).
MAX_GROUP_DEPTH = 32


@dataclass(frozen=True)
class ListErrors:
    """How a method answers bad list input: each entry is ``(code, description template)``, or
    None to ignore the junk as the method does (a non-array filter or order then means none, an
    unknown prefix drops its condition, a bad direction sorts ascending). The unknown-field
    checks apply only when `list_page` is given the method's `fields`."""

    filter_not_array: tuple[str, str] | None = None
    order_not_array: tuple[str, str] | None = None
    bad_operation: tuple[str, str] | None = None  # {operation}, {field}
    bad_direction: tuple[str, str] | None = None  # {direction}, {field}
    unknown_filter_field: tuple[str, str] | None = None  # {field}
    unknown_order_field: tuple[str, str] | None = None  # {field}
    status: int = 400


# IRestService::sanitizeFilter / sanitizeOrder (the REST module's own list helpers).
REST_ERRORS = ListErrors(
    filter_not_array=("ERROR_ARGUMENT", "The filter is not an array."),
    order_not_array=("ERROR_ARGUMENT", "The order is not an array."),
    bad_operation=("ERROR_ARGUMENT", "Filter operation not allowed: {operation}"),
    bad_direction=("ERROR_ARGUMENT", "Order direction should be one of {{ASC|DESC}}"),
    unknown_filter_field=("ERROR_ARGUMENT", "Filter field not allowed: {field}"),
    unknown_order_field=("ERROR_ARGUMENT", "Order field not allowed: {field}"),
)
# The older crm.*.list methods (crm-deal-list.md "Possible Error Codes": empty code).
CRM_ERRORS = ListErrors(
    filter_not_array=("", "Parameter 'filter' must be array."),
    order_not_array=("", "Parameter 'order' must be array."),
)
# crm.item.list and the other ORM-based lists (crm-item-list.md "Possible Error Codes").
# A non-array filter or order is not documented there: ignored.
ITEM_ERRORS = ListErrors(
    bad_operation=("INVALID_ARG_VALUE", "Invalid filter: field '{field}' is not allowed in filter"),
    bad_direction=("INVALID_ARG_VALUE", "Invalid order: allowed sort directions are ASC, DESC. "
                                        "But got '{direction}' for field '{field}'"),
    unknown_filter_field=("INVALID_ARG_VALUE",
                          "Invalid filter: field '{field}' is not allowed in filter"),
    unknown_order_field=("INVALID_ARG_VALUE",
                         "Invalid order: field '{field}' is not allowed in order"),
)
# Methods that take whatever they are given (user.get reads FILTER only when it is an array).
LENIENT = ListErrors()


def list_page(items, *, filter=None, order=None, select=None, start=None,  # noqa: A002
              page_size: int = PAGE_SIZE, always_selected=("ID",), fields=None,
              operations=OPERATIONS, errors: ListErrors = REST_ERRORS, paging: str = PAGES,
              groups: bool = True) -> Page:
    """One page of `items` after `filter`, `order` and `select`, paged by `start` (see above).

    `fields`: the method's known field names (any case); when given, a filter or order on
    another field is answered with `errors`. `operations`: the filter prefixes the method
    accepts (default: every documented one). `paging`: PAGES or OFFSET. `groups`: whether
    integer keys and LOGIC make sub-filters.
    """
    known = _upper_set(fields) if fields is not None else None
    condition = _compile_filter(filter, known, frozenset(operations), errors, groups=groups)
    sort_keys = _compile_order(order, known, errors)
    rows = [item for item in items if condition.test(item)]
    rows = _sort(rows, sort_keys)
    offset = php.intval(start) if start is not None else 0
    if paging == OFFSET:
        # getNavData($start, true) sets no offset for any negative start; userGet counts
        # when `$nav !== -1`, so only start=-1 skips the count
        counted = offset != -1
        offset = max(offset, 0)
        page = rows[offset:offset + page_size]
        total = len(rows) if counted else 0
        next_start = offset + len(page) if offset + len(page) < total else None
    elif offset < 0:
        page, total, next_start = rows[:page_size], 0, None
    else:
        number = offset // page_size + 1
        page = rows[(number - 1) * page_size:number * page_size]
        total = len(rows)
        next_start = number * page_size if number * page_size < total else None
    wanted = _selection(select, always_selected)
    if wanted is not None:
        page = [_project(item, wanted) for item in page]
    return Page(page, total=total, next_start=next_start)


def matches(item: dict, filter, *, operations=OPERATIONS,  # noqa: A002
            errors: ListErrors = LENIENT) -> bool:
    """Whether one item passes `filter` (for methods that filter without paging)."""
    return _compile_filter(filter, None, frozenset(operations), errors).test(item)


# --- filter -------------------------------------------------------------------------------


def _fail(entry: tuple[str, str], errors: ListErrors, **values) -> BitrixError:
    code, template = entry
    return BitrixError(code, template.format(**values), errors.status)


class _All:
    """A group of conditions joined by AND or OR."""

    def __init__(self, parts: list, any_of: bool = False):
        self.parts = parts
        self.any_of = any_of

    def test(self, item: dict) -> bool:
        if not self.parts:
            return True
        if self.any_of:
            return any(part.test(item) for part in self.parts)
        return all(part.test(item) for part in self.parts)


class _Condition:
    """One `prefix + field: value` condition."""

    def __init__(self, operation: str, field: str, value):
        self.negate = operation.startswith("!")
        self.operation = operation.lstrip("!") or "="
        self.plain = operation.lstrip("!") == ""  # no `=`: a text value's `%` is a wildcard
        self.field = field.upper()
        if isinstance(value, (list, dict)):
            self.values = php.array_values(value)
        else:
            self.values = [value]
        self.lookup = _Lookup(self) if len(self.values) > _LOOKUP_FROM else None

    def test(self, item: dict) -> bool:
        actual = _field(item, self.field)
        candidates = actual if isinstance(actual, list) else [actual]
        if not candidates:
            candidates = [""]
        outcomes = [self._one(value) for value in candidates]
        if None in outcomes:  # a date field against a value that is not a date
            return False
        found = any(outcomes)
        return not found if self.negate else found

    def _pattern(self, target) -> bool:
        return self.plain and isinstance(target, str) and "%" in target

    def _one(self, actual) -> bool | None:
        operation = self.operation
        if operation in ("=", "@"):
            if self.lookup is not None:
                found = self.lookup.test(actual)
                if found is not None:
                    return found
            return _any(_like(_text(actual), _text(target)) if self._pattern(target)
                        else _equal(actual, target) for target in self.values)
        if operation in ("%", "?"):
            text = _text(actual)
            return any(_text(target) in text for target in self.values)
        if operation in ("=%", "%="):
            return any(_like(_text(actual), _text(target)) for target in self.values)
        if operation == "><":
            if len(self.values) < 2 or actual == "":
                return False
            low, high = _compare(actual, self.values[0]), _compare(actual, self.values[1])
            if low is None or high is None:
                return None
            return low >= 0 and high <= 0
        return _any(_ordered(actual, operation, target) for target in self.values)


_LOOKUP_FROM = 8  # an equality list longer than this is looked up in sets


class _Lookup:
    """`=`/`@` against a long list of values as set lookups (a list of 100000 ids against 200
    items took a minute compared one by one); `test` answers None where only the one-by-one
    comparison knows (a yes/no or date field, a LIKE pattern, a NaN)."""

    def __init__(self, condition: _Condition):
        self.patterns = any(condition._pattern(target) for target in condition.values)
        targets = [int(target) if isinstance(target, bool) else target
                   for target in condition.values]
        numbers = [float(target) for target in targets if _is_number(target)]
        self.usable = not self.patterns and all(number == number for number in numbers)
        self.numbers = set(numbers)
        self.texts = {_text(target) for target in targets}
        self.other_texts = {_text(target) for target in targets if not _is_number(target)}

    def test(self, actual) -> bool | None:
        if not self.usable or isinstance(actual, bool) or (
                isinstance(actual, str) and _ISO_DATE.match(actual)):
            return None
        if _is_number(actual):
            return float(actual) in self.numbers or _text(actual) in self.other_texts
        return _text(actual) in self.texts


def _any(outcomes) -> bool | None:
    """True if any outcome is True; None if none is True and one is None (not a date)."""
    seen_none = False
    for outcome in outcomes:
        if outcome:
            return True
        if outcome is None:
            seen_none = True
    return None if seen_none else False


def _compile_filter(filter_, known, operations: frozenset, errors: ListErrors,  # noqa: C901
                    depth: int = 0, *, groups: bool = True) -> _All:
    if filter_ is None or filter_ == "":
        if filter_ == "" and errors.filter_not_array:
            raise _fail(errors.filter_not_array, errors)
        return _All([])
    if not isinstance(filter_, (dict, list)):
        if errors.filter_not_array:
            raise _fail(errors.filter_not_array, errors)
        return _All([])
    entries = filter_.items() if isinstance(filter_, dict) else enumerate(filter_)
    parts: list = []
    any_of = False
    for key, value in entries:
        key = php.canonical_int_key(key)
        if isinstance(key, int) and groups:
            if isinstance(value, (dict, list)) and depth < MAX_GROUP_DEPTH:
                parts.append(_compile_filter(value, known, operations, errors, depth + 1))
            continue
        if not isinstance(key, (str, int)):
            continue
        key = str(key)
        if groups and key.upper() == "LOGIC":
            any_of = php.to_str(value).strip().upper() == "OR"
            continue
        operation, field = _KEY.match(key).groups()
        if not field and known is None:
            continue
        if operation not in operations:
            if errors.bad_operation:
                raise _fail(errors.bad_operation, errors, operation=operation, field=field)
            continue
        if known is not None and field.upper() not in known:
            if errors.unknown_filter_field:
                raise _fail(errors.unknown_filter_field, errors, field=field)
            if not field:
                continue
        parts.append(_Condition(operation, field, value))
    return _All(parts, any_of)


def _field(item: dict, upper: str):
    """The item's value for a field named in any case; missing or null is empty."""
    if upper in item:
        value = item[upper]
    else:
        value = next((item[key] for key in item
                      if isinstance(key, str) and key.upper() == upper), "")
    return "" if value is None else value


def _text(value) -> str:
    if isinstance(value, float):
        return php.float_to_str(value).lower()
    return php.to_str(value).lower()


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and _NUMERIC.match(value) is not None


def _yes(value) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("Y", "TRUE", "1")
    return bool(value)


def _equal(actual, target) -> bool | None:
    if isinstance(actual, bool):
        return actual == _yes(target)
    order = _compare(actual, target)
    if order is None:
        return None
    return order == 0


def _ordered(actual, operation: str, target) -> bool | None:
    if actual == "":  # an empty (NULL) value is neither greater nor less than anything
        return False
    order = _compare(actual, target)
    if order is None:
        return None
    return {">": order > 0, ">=": order >= 0, "<": order < 0, "<=": order <= 0}.get(operation,
                                                                                   order == 0)


def _compare(actual, target) -> int | None:
    """-1, 0 or 1 for actual against target: numbers, dates or text; None when a date field is
    compared with something that is not a date."""
    if isinstance(actual, bool):
        actual = int(actual)
    if isinstance(target, bool):
        target = int(target)
    if _is_number(actual) and _is_number(target):
        left, right = float(actual), float(target)
        return (left > right) - (left < right)
    moment = _as_date(actual) if isinstance(actual, str) and _ISO_DATE.match(actual) else None
    if moment is not None:
        wanted = _as_date(php.to_str(target).strip())
        if wanted is None:
            return None
        if (moment.tzinfo is None) != (wanted.tzinfo is None):
            zone = moment.tzinfo or wanted.tzinfo
            moment, wanted = moment.replace(tzinfo=zone), wanted.replace(tzinfo=zone)
        return (moment > wanted) - (moment < wanted)
    left, right = _text(actual), _text(target)
    return (left > right) - (left < right)


def _as_date(text: str) -> datetime | None:
    """ISO 8601, or the portal's date formats (dd.mm.yyyy, mm/dd/yyyy), else None."""
    if _ISO_DATE.match(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    dotted = _DOTTED_DATE.match(text)
    slashed = None if dotted else _SLASHED_DATE.match(text)
    try:
        if dotted:
            day, month, year, hour, minute, second = dotted.groups()
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                            int(second or 0))
        if slashed:
            month, day, year, hour, minute, second, half = slashed.groups()
            hour_value = int(hour or 0)
            if half and half.upper() == "PM" and hour_value < 12:
                hour_value += 12
            if half and half.upper() == "AM" and hour_value == 12:
                hour_value = 0
            return datetime(int(year), int(month), int(day), hour_value, int(minute or 0),
                            int(second or 0))
    except ValueError:
        return None
    return None


def _like(text: str, pattern: str) -> bool:
    """SQL LIKE (both sides already lower case): `%` any run, `_` one character.

    The pieces between `%` are found leftmost-first, in order (a `.*` regex backtracks: eight
    `%a` against forty `a` took seconds), so the cost stays about len(text) * len(pattern).
    """
    first, *rest = pattern.split("%")
    if not rest:
        return len(text) == len(first) and _fits(text, 0, first)
    *middle, last = rest
    end = len(text) - len(last)
    if end < len(first) or not _fits(text, 0, first) or not _fits(text, end, last):
        return False
    position = len(first)
    for piece in middle:
        if not piece:
            continue
        if "_" in piece:
            regex = re.compile("".join("." if char == "_" else re.escape(char) for char in piece),
                               re.DOTALL)
            found = regex.search(text, position, end)
            position = found.end() if found else -1
        else:
            position = text.find(piece, position, end)
            position = position + len(piece) if position >= 0 else -1
        if position < 0:
            return False
    return True


def _fits(text: str, at: int, piece: str) -> bool:
    """Whether `piece` (`_`: any one character) is the text at `at`."""
    return all(char == "_" or char == text[at + index] for index, char in enumerate(piece))


# --- order --------------------------------------------------------------------------------


def _compile_order(order, known, errors: ListErrors) -> list[tuple[str, bool]]:
    """[(FIELD, descending)] in priority order."""
    if order is None or order == []:
        return []
    if order == "" and not errors.order_not_array:
        return []
    if not isinstance(order, (dict, list)):
        if errors.order_not_array:
            raise _fail(errors.order_not_array, errors)
        return []
    entries = order.items() if isinstance(order, dict) else enumerate(order)
    keys: list[tuple[str, bool]] = []
    for key, value in entries:
        if isinstance(php.canonical_int_key(key), int):
            field, direction = php.to_str(value), "ASC"  # ["NAME"]: a field, ascending
        else:
            field, direction = php.to_str(key), php.to_str(value).strip().upper()
        if not field:
            continue
        if known is not None and field.upper() not in known and errors.unknown_order_field:
            raise _fail(errors.unknown_order_field, errors, field=field)
        if direction not in _DIRECTIONS:
            if errors.bad_direction:
                raise _fail(errors.bad_direction, errors, direction=php.to_str(value),
                            field=field)
            direction = "ASC"
        keys.append((field.upper(), direction == "DESC"))
    return keys


def _sort_key(value) -> tuple:
    """Empty first, then numbers, then dates and text; a list sorts by its first value."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bool):
        return (1, int(value), "")
    if value is None or value == "":
        return (0, 0, "")
    if _is_number(value):
        return (1, float(value), "")
    if isinstance(value, str) and _ISO_DATE.match(value):
        moment = _as_date(value)
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return (2, moment.timestamp(), "")
    return (3, 0, _text(value))


def _sort(rows: list[dict], keys: list[tuple[str, bool]]) -> list[dict]:
    rows = sorted(rows, key=lambda row: _sort_key(_field(row, "ID")))
    for field, descending in reversed(keys):
        rows.sort(key=lambda row, name=field: _sort_key(_field(row, name)), reverse=descending)
    return rows


# --- select -------------------------------------------------------------------------------


def _selection(select, always_selected) -> tuple[set[str], bool, bool] | None:
    """(upper-case names, all fields, all UF_ fields), or None for every field."""
    names = php.array_values(select) if isinstance(select, (list, dict)) else []
    names = [php.to_str(name).strip().upper() for name in names
             if not isinstance(name, (list, dict))]
    names = [name for name in names if name]
    if not names or "*" in names and "UF_*" in names:
        return None
    wanted = set(names) | _upper_set(always_selected)
    return wanted, "*" in names, "UF_*" in names


def _project(item: dict, selection: tuple[set[str], bool, bool]) -> dict:
    wanted, every, user_fields = selection
    result: dict[Any, Any] = {}
    for key, value in item.items():
        upper = key.upper() if isinstance(key, str) else key
        is_user_field = isinstance(upper, str) and upper.startswith("UF_")
        if upper in wanted or every or (user_fields and is_user_field):
            result[key] = value
    return result


def _upper_set(names) -> set[str]:
    return {php.to_str(name).upper() for name in (names or ())}
