"""PHP semantics: intval, truthiness, trim, and json_encode as Bitrix calls it."""

from __future__ import annotations

import pytest
from b24emu import php
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("value, expected", [
    ("5", 5), ("5abc", 5), ("abc", 0), (" 12", 12), ("\n-7x", -7), ("+3", 3), ("1e3", 1000),
    ("2.9", 2), ("0x1A", 0), ("", 0), (None, 0), (True, 1), (False, 0), (3.99, 3), (-3.99, -3),
    ([], 0), ([0], 1), ({}, 0), ("99999999999999999999", php.INT_MAX), (float("nan"), 0),
])
def test_intval(value, expected):
    assert php.intval(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("", False), ("0", False), ("0.0", True), (" ", True), ("a", True), (0, False), (1, True),
    (0.0, False), ([], False), ({}, False), ([0], True), (None, False), (False, False),
])
def test_truthy(value, expected):
    assert php.truthy(value) is expected


def test_trim_uses_php_characters():
    assert php.trim(" \t\n\r\0\x0bhi\x0b\0") == "hi"
    assert php.trim("\x0chi\u00a0") == "\x0chi\u00a0"
    assert php.trim(5) == "5" and php.trim(None) == "" and php.trim(["a"]) == ""


@pytest.mark.parametrize("value, expected", [
    ({"a": "x/y"}, '{"a":"x\\/y"}'),
    ("\u00fc\u20ac", '"\\u00fc\\u20ac"'),
    ("\U0001f600", '"\\ud83d\\ude00"'),
    ("<b>&'\"", '"\\u003Cb\\u003E\\u0026\\u0027\\u0022"'),
    ("back\\slash\\", '"back\\\\slash\\\\"'),
    ("\\\"", '"\\\\\\u0022"'),
    ({}, "[]"),
    ([], "[]"),
    ({"0": "a", "1": "b"}, '["a","b"]'),
    ({0: "a", 1: "b"}, '["a","b"]'),
    ({"1": "a", "0": "b"}, '{"1":"a","0":"b"}'),
    ({"0": "a", "2": "b"}, '{"0":"a","2":"b"}'),
    ({"00": "a"}, '{"00":"a"}'),
    (1.5, "1.5"), (2.0, "2.0"), (1e25, "1.0e+25"), (None, "null"), (True, "true"),
    ({"a": [1, {"b": False}]}, '{"a":[1,{"b":false}]}'),
])
def test_json_dumps_like_php(value, expected):
    assert php.json_dumps(value) == expected


def test_json_dumps_refuses_nan():
    with pytest.raises(ValueError):
        php.json_dumps(float("inf"))


# --- the C-encoder fast path of json_dumps writes exactly what the PHP-rule encoder writes ------

_keys = st.one_of(st.text(max_size=6), st.sampled_from(["0", "1", "2", "-1", "01", " 0"]),
                  st.integers(-3, 3), st.booleans())
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e25, 1e-7, 2.5e16, -0.0]),
    st.text(), st.sampled_from(["</script>", "a/b", "'\"&<>\\", "é\u2028\U0001F600", "\x00\x1f"]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.tuples(children, children),
        st.dictionaries(_keys, children, max_size=4),
        st.lists(children, max_size=3).map(lambda items: dict(enumerate(items))),
        st.lists(children, max_size=3).map(lambda items: {str(i): v for i, v in enumerate(items)}),
        st.dictionaries(st.text(max_size=3), children, max_size=2).map(php.PhpObject),
    ),
    max_leaves=20,
)


def _slow_json(value):
    parts: list[str] = []
    php._encode(value, parts)
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(_values)
def test_json_dumps_fast_path_equals_php_rules(value):
    try:
        expected = _slow_json(value)
    except (ValueError, TypeError) as error:
        with pytest.raises(type(error)):
            php.json_dumps(value)
        return
    assert php.json_dumps(value) == expected


def test_json_dumps_fast_path_taken_for_an_envelope():
    envelope = {"result": 7, "time": {"start": 1.5, "date_start": "2026-01-01T00:00:00+03:00"}}
    assert php._c_encodable(envelope)
    assert not php._c_encodable({"result": {}}) and not php._c_encodable({"0": 1})
    assert php.json_dumps(envelope) == _slow_json(envelope)
