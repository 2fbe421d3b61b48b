"""The PHP semantics the portal's code relies on: intval, truthiness, trim, json_encode.

Bitrix24 is PHP. Where a rule in the spec says ``intval(USER_ID) <= 0`` or "a truthy ATTACH",
the emulator calls the functions here so that odd inputs ("5abc", "0", [], True) behave as they
do on a portal.
"""

from __future__ import annotations

import json
import math
import re

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)

_NUMERIC_PREFIX = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")
_CANONICAL_INT = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")
# json_encode(JSON_HEX_TAG|JSON_HEX_AMP|JSON_HEX_APOS|JSON_HEX_QUOT) plus PHP's default "\/".
_PHP_STRING_ESCAPES = {
    "\\\\": "\\\\",
    '\\"': "\\u0022",
    "/": "\\/",
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "'": "\\u0027",
}
_PHP_STRING_RE = re.compile(r"\\\\|\\\"|[/<>&']")
_PHP_TRIM_CHARS = " \t\n\r\0\x0b"


def intval(value) -> int:
    """PHP ``intval``: "5abc" is 5, "abc" is 0, arrays are 0 or 1, out of range saturates."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return max(INT_MIN, min(INT_MAX, value))
    if isinstance(value, float):
        return _float_to_int(value)
    if isinstance(value, str):
        return _string_to_int(value)
    if isinstance(value, (list, dict)):
        return 1 if value else 0
    return 0


def _float_to_int(value: float) -> int:
    if math.isnan(value) or math.isinf(value):
        return 0
    return max(INT_MIN, min(INT_MAX, int(value)))


def _string_to_int(value: str) -> int:
    match = _NUMERIC_PREFIX.match(value)
    if not match:
        return 0
    number = match.group(1)
    if any(c in number for c in ".eE"):
        return _float_to_int(float(number))
    return max(INT_MIN, min(INT_MAX, int(number)))


def truthy(value) -> bool:
    """PHP truthiness: "", "0", 0, 0.0, [], {} and null are false."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def to_str(value) -> str:
    """PHP string conversion of a request value (arrays become "", as PHP 7's trim(array) did)."""
    if isinstance(value, str):
        return value
    if value is True:
        return "1"
    if value is None or value is False:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_to_str(value)
    return ""


def float_to_str(value: float) -> str:
    """PHP 8 float-to-string: shortest round trip, no trailing ".0" for whole numbers."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return text.replace("e+", "E+").replace("e-", "E-")


def trim(value) -> str:
    """PHP ``trim`` with its default character list (no form feed, no Unicode spaces)."""
    return to_str(value).strip(_PHP_TRIM_CHARS)


def canonical_int_key(key):
    """PHP array key rule: a decimal-integer string in range becomes an int key."""
    if isinstance(key, str) and _CANONICAL_INT.match(key):
        number = int(key)
        if INT_MIN <= number <= INT_MAX:
            return number
    return key


def is_list_shaped(mapping: dict) -> bool:
    """True when a PHP array's keys are exactly 0..n-1 in order, so json_encode writes a list."""
    for expected, key in enumerate(mapping):
        if canonical_int_key(key) != expected or isinstance(key, bool):
            return False
    return True


def array_values(value) -> list:
    """The values of a PHP array in order (a list as is; a dict's values; anything else: [])."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


class PhpObject(dict):
    """A PHP object rather than an array: json_encode writes ``{}`` even when it is empty (a
    `Bitrix\\Main\\Type\\DateTime` has no public properties, so user.get sends ``{}``)."""


EMPTY_OBJECT = PhpObject()


def json_dumps(value) -> str:
    """Serialize as Bitrix's ``Main\\Web\\Json::encode`` does (spec B 4.4).

    ``\\/`` for slashes, ``\\uXXXX`` for non-ASCII, HEX escapes for ``< > & ' "`` inside strings,
    no spaces, an empty array as ``[]`` and a 0..n-1 keyed map as a list. The output is pure ASCII.
    """
    if _c_encodable(value):
        try:
            encoded = _C_ENCODER.encode(value)
        except (ValueError, TypeError, RecursionError):
            pass  # the slow path raises its own error for the same value
        else:
            # The regex walks every character; most answers hold none of the characters it
            # replaces, and looking for each of them is a fast scan.
            if any(char in encoded for char in _PHP_ESCAPED_CHARS):
                return _PHP_STRING_RE.sub(_php_escape, encoded)
            return encoded
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


# The C encoder writes exactly what `_encode` writes for values `_c_encodable` accepts: strings
# (escaped with \uXXXX; PHP's own escapes are applied to the whole text afterwards, which only
# touches the inside of strings), exact ints, bools, None, plain floats, lists, tuples and dicts
# with string keys that PHP would not write as a list.
_C_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False,
                              check_circular=False)
_C_SCALARS = frozenset({str, int, bool, type(None)})
_C_CHECK_LIMIT = 10_000  # values larger than this are left to the slow path whole


# What every match of _PHP_STRING_RE starts with (a quick scan rules the regex out).
_PHP_ESCAPED_CHARS = tuple(sorted({escape[0] for escape in _PHP_STRING_ESCAPES}))


def _php_escape(match: re.Match) -> str:
    return _PHP_STRING_ESCAPES[match.group(0)]


def _c_encodable(value) -> bool:
    """True when the C encoder's output (plus PHP's string escapes) equals `_encode`'s."""
    stack, seen = [value], 0
    scalars = _C_SCALARS
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in scalars:
            continue
        seen += 1
        if seen > _C_CHECK_LIMIT:
            return False
        if kind is dict:
            if not item:
                return False  # PHP writes an empty array as []
            for key in item:
                if type(key) is not str:
                    return False
                if key == "0":
                    return False  # may be list-shaped: 0..n-1 keys are written as a list
                break
            for key in item:
                if type(key) is not str:
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is float:
            text = repr(item)
            if "e" in text and "." not in text:
                return False  # PHP writes 1.0e+25 where Python writes 1e+25
        else:
            return False  # PhpObject, subclasses, anything else: the slow path decides
    return True


def _encode(value, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_encode_float(value))
    elif isinstance(value, PhpObject) and not value:
        out.append("{}")
    elif isinstance(value, dict):
        _encode_dict(value, out)
    elif isinstance(value, (list, tuple)):
        _encode_list(value, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as PHP JSON")


def encode_string(value: str) -> str:
    """One JSON string, escaped the PHP way."""
    encoded = json.encoder.encode_basestring_ascii(value)
    return _PHP_STRING_RE.sub(lambda m: _PHP_STRING_ESCAPES[m.group(0)], encoded)


def _encode_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError("PHP json_encode cannot encode NAN or INF")
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _encode_list(values, out: list[str]) -> None:
    out.append("[")
    for index, item in enumerate(values):
        if index:
            out.append(",")
        _encode(item, out)
    out.append("]")


def _encode_dict(mapping: dict, out: list[str]) -> None:
    if not mapping or is_list_shaped(mapping):
        _encode_list(list(mapping.values()), out)
        return
    out.append("{")
    for index, (key, item) in enumerate(mapping.items()):
        if index:
            out.append(",")
        out.append(encode_string(str(key)))
        out.append(":")
        _encode(item, out)
    out.append("}")
