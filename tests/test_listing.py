"""The list engine: filter prefixes, order, select and `start` paging as a portal's lists answer."""

from __future__ import annotations

import pytest
from b24emu.methods import listing
from b24emu.methods.listing import list_page, matches
from b24emu.rest.envelope import Page, success_body
from b24emu.rest.errors import BitrixError

USERS = [
    {"ID": "1", "ACTIVE": True, "NAME": "Anna", "LAST_NAME": "Ivanova", "PERSONAL_CITY": "Berlin",
     "DATE_REGISTER": "2025-03-10T09:00:00+03:00", "UF_DEPARTMENT": [1], "UF_SKILLS": "sql"},
    {"ID": "2", "ACTIVE": True, "NAME": "Ivan", "LAST_NAME": "Petrov", "PERSONAL_CITY": "Munich",
     "DATE_REGISTER": "2025-06-01T10:00:00+03:00", "UF_DEPARTMENT": [1, 3], "UF_SKILLS": ""},
    {"ID": "3", "ACTIVE": False, "NAME": "Maria", "LAST_NAME": "Smith", "PERSONAL_CITY": "",
     "DATE_REGISTER": "2025-09-15T08:30:00+03:00", "UF_DEPARTMENT": [], "UF_SKILLS": "python"},
    {"ID": "10", "ACTIVE": True, "NAME": "John", "LAST_NAME": "Doe",
     "DATE_REGISTER": "", "UF_DEPARTMENT": [3]},
]


def ids(page: Page) -> list[str]:
    return [item["ID"] for item in page.items]


def many(count: int) -> list[dict]:
    return [{"ID": str(number), "TITLE": f"Item {number}"} for number in range(1, count + 1)]


# --- filter -------------------------------------------------------------------------------


@pytest.mark.parametrize(("filter_", "expected"), [
    ({}, ["1", "2", "3", "10"]),
    ({"NAME": "Ivan"}, ["2"]),
    ({"name": "ivan"}, ["2"]),  # field names and text values case-insensitively
    ({"=NAME": "Ivan"}, ["2"]),
    ({"NAME": "Iv%"}, ["2"]),  # no prefix: a `%` in a text value is a wildcard (user.get docs)
    ({"=NAME": "Iv%"}, []),  # `=`: exactly equal
    ({"!NAME": "%a"}, ["2", "10"]),
    ({"!NAME": "Ivan"}, ["1", "3", "10"]),
    ({"!=NAME": "Ivan"}, ["1", "3", "10"]),
    ({">ID": 2}, ["3", "10"]),  # numbers compare as numbers: "10" > 2
    ({">=ID": "2"}, ["2", "3", "10"]),
    ({"<ID": 3}, ["1", "2"]),
    ({"<=ID": "3"}, ["1", "2", "3"]),
    ({"@ID": [1, 10]}, ["1", "10"]),
    ({"ID": ["2", "3"]}, ["2", "3"]),  # an array value means IN
    ({"!@ID": [1, 10]}, ["2", "3"]),
    ({"!ID": [1, 10]}, ["2", "3"]),
    ({"%LAST_NAME": "ov"}, ["1", "2"]),  # contains, no % needed
    ({"!%LAST_NAME": "ov"}, ["3", "10"]),
    ({"=%NAME": "Iv%"}, ["2"]),  # LIKE with the docs' wildcard
    ({"%=NAME": "%a"}, ["1", "3"]),
    ({"=%NAME": "_ohn"}, ["10"]),
    ({"!=%NAME": "%a"}, ["2", "10"]),
    ({"!%=NAME": "m%"}, ["1", "2", "10"]),
    ({"><ID": [2, 3]}, ["2", "3"]),
    ({"!><ID": [2, 3]}, ["1", "10"]),
    ({"?NAME": "ar"}, ["3"]),
    ({"@PERSONAL_CITY": ["New York", "Los Angeles"]}, []),  # the user.get docs' example
    ({"@PERSONAL_CITY": ["Berlin", "Munich"]}, ["1", "2"]),
    ({"PERSONAL_CITY": ""}, ["3", "10"]),  # a field an item lacks matches as empty
    ({"!PERSONAL_CITY": ""}, ["1", "2"]),
    ({"UF_DEPARTMENT": 3}, ["2", "10"]),  # a multiple field: any of its values
    ({"UF_DEPARTMENT": [1]}, ["1", "2"]),
    ({"!UF_DEPARTMENT": 1}, ["3", "10"]),
    ({"ACTIVE": "Y"}, ["1", "2", "10"]),
    ({"ACTIVE": "N"}, ["3"]),
    ({"ACTIVE": True}, ["1", "2", "10"]),
    ({"ACTIVE": "false"}, ["3"]),
    ({"NAME": "Ivan", "ACTIVE": "Y"}, ["2"]),  # conditions are joined by AND
    ({">ID": 1, "<ID": 10}, ["2", "3"]),
    ({"@ID": []}, []),
    ({"UNKNOWN_FIELD": "x"}, []),
    ({"!UNKNOWN_FIELD": "x"}, ["1", "2", "3", "10"]),
])
def test_filter(filter_, expected):
    assert ids(list_page(USERS, filter=filter_)) == expected


@pytest.mark.parametrize(("filter_", "expected"), [
    ({">DATE_REGISTER": "2025-06-01"}, ["2", "3"]),  # a naive date in the item's zone
    ({">DATE_REGISTER": "2025-06-01T10:00:00+03:00"}, ["3"]),
    ({">=DATE_REGISTER": "2025-06-01T07:00:00+00:00"}, ["2", "3"]),  # same instant, UTC
    ({"<DATE_REGISTER": "01.06.2025"}, ["1"]),  # the portal's dd.mm.yyyy
    ({"<DATE_REGISTER": "06/01/2025 11:00 am"}, ["1", "2"]),  # and mm/dd/yyyy
    ({"DATE_REGISTER": "2025-03-10T09:00:00+03:00"}, ["1"]),
    ({">DATE_REGISTER": "yesterday"}, []),  # not a date: the condition retrieves nothing
    ({"!DATE_REGISTER": "yesterday"}, ["10"]),  # (only the empty date passes, as text)
])
def test_dates_compare_as_dates(filter_, expected):
    assert ids(list_page(USERS, filter=filter_)) == expected


def test_sub_filters_with_logic_or():
    """crm.item.list's docs example: integer keys hold groups, LOGIC OR inside one."""
    filter_ = {"0": {"logic": "OR", "0": {"NAME": "Anna"}, "1": {"LAST_NAME": "Doe"}},
               ">ID": 0}
    assert ids(list_page(USERS, filter=filter_)) == ["1", "10"]
    top_or = {"LOGIC": "OR", "NAME": "Anna", "=LAST_NAME": "Smith"}
    assert ids(list_page(USERS, filter=top_or)) == ["1", "3"]
    as_list = [{"NAME": "Anna"}]  # a PHP list of groups
    assert ids(list_page(USERS, filter=as_list)) == ["1"]


def test_deep_sub_filters_stay_bounded():
    nested = {"NAME": "Nobody"}
    for _ in range(2000):
        nested = {"0": nested}
    assert ids(list_page(USERS, filter=nested)) == ["1", "2", "3", "10"]  # dropped past 32
    shallow = {"NAME": "Anna"}
    for _ in range(32):
        shallow = {"0": shallow}
    assert ids(list_page(USERS, filter=shallow)) == ["1"]


def test_matches_one_item():
    assert matches(USERS[0], {"%NAME": "nn"})
    assert not matches(USERS[0], {"NAME": "Ivan"})


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "code", "description"), [
    ({"filter": "NAME"}, "ERROR_ARGUMENT", "The filter is not an array."),
    ({"filter": {"~NAME": "x"}}, "ERROR_ARGUMENT", "Filter operation not allowed: ~"),
    ({"filter": {"<>NAME": "x"}}, "ERROR_ARGUMENT", "Filter operation not allowed: <>"),
    ({"order": "NAME"}, "ERROR_ARGUMENT", "The order is not an array."),
    ({"order": {"NAME": "UP"}}, "ERROR_ARGUMENT", "Order direction should be one of {ASC|DESC}"),
    ({"filter": {"FOO": 1}, "fields": ["ID", "NAME"]}, "ERROR_ARGUMENT",
     "Filter field not allowed: FOO"),
    ({"order": {"FOO": "ASC"}, "fields": ["ID", "NAME"]}, "ERROR_ARGUMENT",
     "Order field not allowed: FOO"),
])
def test_rest_errors(kwargs, code, description):
    """IRestService::sanitizeFilter/sanitizeOrder: ERROR_ARGUMENT, HTTP 400."""
    with pytest.raises(BitrixError) as caught:
        list_page(USERS, errors=listing.REST_ERRORS, **kwargs)
    assert (caught.value.code, caught.value.description, caught.value.status) == (
        code, description, 400)


def test_crm_errors():
    """crm.deal.list's documented errors: empty code, 400."""
    for kwargs, description in (({"filter": "x"}, "Parameter 'filter' must be array."),
                                ({"order": "x"}, "Parameter 'order' must be array.")):
        with pytest.raises(BitrixError) as caught:
            list_page(USERS, errors=listing.CRM_ERRORS, **kwargs)
        assert caught.value.body() == {"error": "", "error_description": description}
        assert caught.value.status == 400
    # a bad direction sorts ascending there
    assert ids(list_page(USERS, order={"ID": "sideways"}, errors=listing.CRM_ERRORS)) == [
        "1", "2", "3", "10"]


def test_item_errors():
    """crm.item.list's documented INVALID_ARG_VALUE texts."""
    with pytest.raises(BitrixError) as caught:
        list_page(USERS, order={"NAME": "up"}, errors=listing.ITEM_ERRORS)
    assert caught.value.body() == {
        "error": "INVALID_ARG_VALUE",
        "error_description": "Invalid order: allowed sort directions are ASC, DESC. "
                             "But got 'up' for field 'NAME'"}
    with pytest.raises(BitrixError) as caught:
        list_page(USERS, filter={"FOO": 1}, fields=["ID"], errors=listing.ITEM_ERRORS)
    assert caught.value.description == "Invalid filter: field 'FOO' is not allowed in filter"
    with pytest.raises(BitrixError) as caught:
        list_page(USERS, order={"FOO": "ASC"}, fields=["ID"], errors=listing.ITEM_ERRORS)
    assert caught.value.description == "Invalid order: field 'FOO' is not allowed in order"


def test_lenient_ignores_junk():
    lenient = listing.LENIENT
    assert ids(list_page(USERS, filter="junk", order=7, errors=lenient)) == ["1", "2", "3", "10"]
    assert ids(list_page(USERS, filter={"~NAME": "x", "NAME": "Anna"}, errors=lenient)) == ["1"]
    assert ids(list_page(USERS, order={"ID": "up"}, errors=lenient)) == ["1", "2", "3", "10"]


def test_operations_can_be_narrowed():
    with pytest.raises(BitrixError, match="Filter operation not allowed: !"):
        list_page(USERS, filter={"!NAME": "x"}, operations=("", "=", ">", "<", "@", "%"))


@pytest.mark.parametrize(("filter_", "description"), [
    ({"0": {"NAME": "Anna"}}, "Filter operation not allowed: 0"),  # no sub-filters there
    ([{"NAME": "Anna"}], "Filter operation not allowed: 0"),
    ({"LOGIC": "OR"}, "Filter field not allowed: LOGIC"),
    ({"=": 1}, "Filter field not allowed: "),
])
def test_without_groups_integer_keys_and_logic_are_refused(filter_, description):
    """IRestService::sanitizeFilter knows no sub-filters: every key is prefix + field."""
    with pytest.raises(BitrixError) as caught:
        list_page(USERS, filter=filter_, fields=["ID", "NAME"], groups=False,
                  operations=("", "=", ">", "<", ">=", "<=", "@", "%"))
    assert (caught.value.code, caught.value.description) == ("ERROR_ARGUMENT", description)


def test_an_empty_order_string_is_not_an_array():
    with pytest.raises(BitrixError, match="The order is not an array."):
        list_page(USERS, order="", errors=listing.REST_ERRORS)
    assert ids(list_page(USERS, order="", errors=listing.LENIENT)) == ["1", "2", "3", "10"]


# --- order --------------------------------------------------------------------------------


def test_default_order_is_id_ascending_as_numbers():
    shuffled = [USERS[3], USERS[1], USERS[0], USERS[2]]
    assert ids(list_page(shuffled)) == ["1", "2", "3", "10"]


@pytest.mark.parametrize(("order", "expected"), [
    ({"ID": "DESC"}, ["10", "3", "2", "1"]),
    ({"id": "desc"}, ["10", "3", "2", "1"]),
    ({"NAME": "asc"}, ["1", "2", "10", "3"]),
    ({"ACTIVE": "ASC", "NAME": "DESC"}, ["3", "10", "2", "1"]),  # several keys, in order
    ({"PERSONAL_CITY": "ASC"}, ["3", "10", "1", "2"]),  # empty first, ties keep ID order
    ({"DATE_REGISTER": "DESC"}, ["3", "2", "1", "10"]),
    (["NAME"], ["1", "2", "10", "3"]),  # a list of fields: ascending
])
def test_order(order, expected):
    assert ids(list_page(USERS, order=order)) == expected


# --- select -------------------------------------------------------------------------------


def test_select():
    page = list_page(USERS, select=["NAME", "last_name", "NOPE"], filter={"ID": 1})
    assert page.items == [{"ID": "1", "NAME": "Anna", "LAST_NAME": "Ivanova"}]
    page = list_page(USERS, select=["UF_*"], filter={"ID": 2})
    assert page.items == [{"ID": "2", "UF_DEPARTMENT": [1, 3], "UF_SKILLS": ""}]
    assert list_page(USERS, select=["*"], filter={"ID": 2}).items == [USERS[1]]
    assert list_page(USERS, select=[], filter={"ID": 2}).items == [USERS[1]]
    assert list_page(USERS, select="NAME", filter={"ID": 2}).items == [USERS[1]]
    page = list_page(USERS, select=["NAME"], always_selected=("ID", "ACTIVE"), filter={"ID": 3})
    assert page.items == [{"ID": "3", "ACTIVE": False, "NAME": "Maria"}]


def test_select_does_not_change_the_items():
    list_page(USERS, select=["NAME"])
    assert "LAST_NAME" in USERS[0]


# --- paging -------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "first", "count", "next_start"), [
    (None, "1", 50, 50),
    (0, "1", 50, 50),
    (1, "1", 50, 50),  # page intdiv(1, 50) + 1 = 1: start=1 does not skip the first item
    (49, "1", 50, 50),
    (50, "51", 50, 100),
    (60, "51", 50, 100),
    ("100", "101", 20, None),  # the last page: no next
    ("abc", "1", 50, 50),  # intval("abc") = 0
])
def test_start_pages_as_a_portal(start, first, count, next_start):
    page = list_page(many(120), start=start)
    assert (page.items[0]["ID"], len(page.items), page.next_start, page.total) == (
        first, count, next_start, 120)


def test_start_past_the_end_is_an_empty_page():
    page = list_page(many(120), start=150)
    assert (page.items, page.total, page.next_start) == ([], 120, None)


@pytest.mark.parametrize("paging", [listing.PAGES, listing.OFFSET])
def test_start_minus_one_turns_the_count_off(paging):
    """setNavData with a count of 0: `total` is 0 (huge-data.md: `[total] => 0`), no `next`."""
    page = list_page(many(120), start=-1, paging=paging)
    assert (len(page.items), page.total, page.next_start) == (50, 0, None)
    body = success_body(page, {"start": 0})
    assert body["total"] == 0
    assert "next" not in body
    assert list(body) == ["result", "total", "time"]


@pytest.mark.parametrize(("start", "first", "count", "next_start"), [
    (None, "1", 50, 50),
    (1, "2", 50, 51),  # getNavData($start, true): offset = intval(start)
    (49, "50", 50, 99),
    (50, "51", 50, 100),
    (100, "101", 20, None),
    (119, "120", 1, None),
])
def test_offset_paging_reads_start_as_an_offset(start, first, count, next_start):
    page = list_page(many(120), start=start, paging=listing.OFFSET)
    assert (page.items[0]["ID"], len(page.items), page.next_start, page.total) == (
        first, count, next_start, 120)


@pytest.mark.parametrize("start", [-5, "-2", -50, -2.5])
def test_offset_paging_counts_unless_start_is_exactly_minus_one(start):
    """userGet counts unless `$nav === -1` (intval of `start`); getNavData($start, true) sets no
    offset for any negative start: -5 reads from the first item with `total` and `next`."""
    page = list_page(many(120), start=start, paging=listing.OFFSET)
    assert (ids(page)[0], len(page.items), page.next_start, page.total) == ("1", 50, 50, 120)
    assert list(success_body(page, {})) == ["result", "next", "total", "time"]
    for minus_one in ("-1", -1.9):  # intval: -1, the no-count mode
        page = list_page(many(120), start=minus_one, paging=listing.OFFSET)
        assert (len(page.items), page.total, page.next_start) == (50, 0, None)


def test_offset_paging_walks_every_item_once_by_next():
    items, seen, start = many(173), [], 7
    while start is not None:
        page = list_page(items, start=start, paging=listing.OFFSET)
        seen += ids(page)
        start = page.next_start
    assert seen == [str(number) for number in range(8, 174)]


def test_envelope_lifts_next_and_total():
    body = success_body(list_page(many(60)), {})
    assert (body["next"], body["total"]) == (50, 60)
    body = success_body(list_page(many(60), start=50), {})
    assert "next" not in body
    assert body["total"] == 60


def test_page_size():
    page = list_page(many(7), page_size=3, start=3)
    assert (ids(page), page.next_start, page.total) == (["4", "5", "6"], 6, 7)


def test_walk_by_start_like_fast_bitrix24():
    """get_all: the first call gives total; then start=50, 100, … until no next."""
    items, seen, start = many(173), [], None
    while True:
        page = list_page(items, start=start)
        seen += ids(page)
        if page.next_start is None:
            break
        start = page.next_start
    assert seen == [str(number) for number in range(1, 174)]


def test_walk_by_id_like_the_sdks_list_helpers():
    """callList / b24pysdk: order ID ASC, filter >ID last, start -1, stop on a short page."""
    items, seen, last = many(150), [], 0
    while True:
        page = list_page(items, order={"ID": "ASC"}, filter={">ID": last}, start=-1)
        assert page.total == 0
        assert page.next_start is None
        seen += ids(page)
        if len(page.items) < 50:
            break
        last = page.items[-1]["ID"]
    assert seen == [str(number) for number in range(1, 151)]


class _RecordingRe:
    """`re` as listing sees it, noting every pattern it is asked to compile or match."""

    def __init__(self):
        import re

        self.real, self.patterns = re, []

    def __getattr__(self, name):
        real = getattr(self.real, name)
        if name not in ("compile", "match", "fullmatch", "search", "findall", "finditer"):
            return real

        def recorded(pattern, *args, **kwargs):
            self.patterns.append(getattr(pattern, "pattern", pattern))
            return real(pattern, *args, **kwargs)
        return recorded


def test_a_like_pattern_with_many_wildcards_answers_at_once(monkeypatch):
    """`%` runs are found piece by piece (str.find), never by a backtracking `.*` regex: eight
    `%a` against forty `a` took seconds that way. `_` pieces compile to fixed-width regexes."""
    recording = _RecordingRe()
    monkeypatch.setattr(listing, "re", recording)
    items = [{"ID": "1", "NAME": "a" * 40}, {"ID": "2", "NAME": "ab" * 20}]
    assert ids(list_page(items, filter={"NAME": "%a" * 8 + "b"})) == ["2"]
    assert recording.patterns == []  # no regex at all for a pattern without `_`
    assert ids(list_page(items, filter={"=%NAME": "a_a%b_b%a"})) == []
    assert ids(list_page(items, filter={"=%NAME": "a_a%b_b%ab"})) == ["2"]
    assert recording.patterns  # the `_` pieces: no quantifier, so nothing to backtrack
    assert not any(mark in pattern for pattern in recording.patterns for mark in "*+?{")


def test_a_long_in_list_is_looked_up_not_compared_one_by_one(monkeypatch):
    """A list of 19,003 values against 200 items: set lookups, not 3.8 million comparisons
    (one by one took about half a minute)."""
    comparisons = []
    real_equal = listing._equal

    def counted(actual, target):
        comparisons.append(1)
        return real_equal(actual, target)
    monkeypatch.setattr(listing, "_equal", counted)
    items = many(200)
    wanted = list(range(1000, 20000)) + ["7", 9.0, "ITEM 12"]
    assert ids(list_page(items, filter={"@ID": wanted})) == ["7", "9"]
    assert ids(list_page(items, filter={"TITLE": wanted})) == ["12"]
    assert len(list_page(items, filter={"!@ID": wanted}).items) == 50
    assert len(comparisons) <= len(items)  # the lookup answers (one by one: 3.8 million)
    before = len(comparisons)
    assert ids(list_page(items, filter={"@ID": ["7", "9"]})) == ["7", "9"]  # a short list
    assert len(comparisons) - before >= len(items)  # is compared value by value: the counter
