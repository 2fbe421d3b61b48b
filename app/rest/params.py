"""Request decoding as a Bitrix portal does it: PHP's $_GET/$_POST/parse_str and Json::decode.

A PHP array becomes a ``list`` when its keys are exactly 0..n-1 in order, else an ordered ``dict``
whose keys are ints for canonical decimal strings. The top level returned here is always a dict.
Sources: php-src main/php_variables.c (php_register_variable_ex, php_default_treat_data,
php_std_post_handler), main/rfc1867.c, ext/json/json_parser.y; Bitrix CRestUtil::getRequestData,
HttpRequest::__construct and Web\\Json::decode (spec B 7.1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from b24emu.php import INT_MAX, INT_MIN, canonical_int_key

MAX_INPUT_VARS = 1000  # php.ini max_input_vars
MAX_INPUT_NESTING = 64  # php.ini max_input_nesting_level
JSON_MAX_DEPTH = 512  # json_decode()'s default $depth
# Emulator rule: a JSON body with more values than this is refused before it is decoded, so a
# worker never builds millions of objects (PHP would run out of its memory_limit on such a body).
MAX_JSON_VALUES = 100_000

_C_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale
_UNCLOSED_MANGLE = str.maketrans({" ": "_", ".": "_", "[": "_"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SAPI_TYPE_END = re.compile(r"[;, ]")
_BITRIX_TYPE_PARAMS = re.compile(r";.*$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Where a decoded JSON string could hold a surrogate: a \uD800-\uDFFF escape, or one encoded
# raw (only a str body passed in can carry it; UTF-8 bytes with one do not decode).
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_NUMERIC_START = frozenset("-0123456789")  # a JSON key PHP may read as an integer starts so
_PHP_TRIM_BYTES = b" \t\n\r\0\x0b"
_FORBIDDEN_PREFIXES = ("__Host-", "__Secure-")
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class DecodeLimitError(ValueError):
    """A body too complex to decode within the emulator's memory and CPU bounds."""


class _PhpArray(dict):
    """A PHP array being built: an ordered dict plus zend_hash's next free integer key."""

    __slots__ = ("next_free",)

    def __init__(self) -> None:
        super().__init__()
        self.next_free: int | None = None  # None: no integer key yet (ZEND_LONG_MIN in PHP 8)

    def put(self, key, value) -> bool:
        """``$a[key] = value``, or ``$a[] = value`` for key None; False when PHP refuses it."""
        if key is None:
            key = 0 if self.next_free is None else self.next_free
            if key in self:  # next_free saturates at PHP_INT_MAX and that key is taken
                return False
        if isinstance(key, int) and (self.next_free is None or key >= self.next_free):
            # PHP 8 (RFC negative_array_index): after -5 the next appended key is -4
            self.next_free = min(key + 1, INT_MAX)
        self[key] = value
        return True


def parse_php_query(data: str | bytes, *, max_vars: int = 1000, max_depth: int = 64) -> dict:
    """PHP parse_str() of a query string or urlencoded body."""
    return _export_top(_parse_urlencoded(_as_bytes(data), max_vars, max_depth, post=False))


def assemble_php_pairs(
    pairs: Iterable[tuple[str, object]], *, max_vars: int = 1000, max_depth: int = 64
) -> dict:
    """PHP php_register_variable_ex(): nested arrays from already-decoded (name, value) pairs."""
    top = _PhpArray()
    for count, (name, value) in enumerate(pairs, start=1):
        if count > max_vars:  # rfc1867.c: `++count <= PG(max_input_vars)`, the rest are dropped
            break
        _register(top, _as_text(name), value, max_depth)
    return _export_top(top)


# A string literal, or an unclosed one up to the end. Possessive quantifiers: the pattern never
# backtracks, so it runs in linear time; with `(?:[^"\\]|\\.)*"` a 120 KB body of escaped quotes
# that never closes took 79 s (each quote rescanned the rest of the body) with the GIL held.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)


def _separators(raw: bytes) -> int:
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{")


def decode_json_body(body: bytes) -> dict:
    """Bitrix Json::decode of a JSON body; anything invalid is {} (spec Part A 2).

    Raises DecodeLimitError for a body with more than MAX_JSON_VALUES values: every value but
    the first of a container follows a comma, so the count of `,` `[` `{` bounds it from above
    without decoding anything.
    """
    raw = _as_bytes(body)
    if _separators(raw) > MAX_JSON_VALUES and _separators(
            _JSON_STRING.sub(b'""', raw)) > MAX_JSON_VALUES:
        # Counted again without string literals only when the cheap count trips, so that a
        # long text full of commas is not taken for many values.
        raise DecodeLimitError(f"The JSON body has more than {MAX_JSON_VALUES} values")
    try:
        text = body if isinstance(body, str) else bytes(body).decode("utf-8")
        value = _JSON_DECODER.decode(text)
    except (ValueError, TypeError, RecursionError):
        return {}
    # Walked only when the text could hold what PHP refuses: 511 nested containers need as
    # many opening brackets, a surrogate its escape.
    if ((raw.count(b"[") + raw.count(b"{") >= JSON_MAX_DEPTH - 1
         or _MAYBE_SURROGATE.search(raw)) and not _json_acceptable(value)):
        return {}
    if isinstance(value, list):
        return dict(enumerate(value))
    return value if isinstance(value, dict) else {}


def decode_request(
    *,
    http_method: str,
    query_string: bytes,
    content_type: str | None,
    body: bytes,
    form_pairs: list[tuple[str, str]] | None = None,
) -> dict:
    """The method parameters of one REST request: query merged with body, body wins (B 7.1)."""
    query = _parse_urlencoded(_as_bytes(query_string), MAX_INPUT_VARS, MAX_INPUT_NESTING, False)
    is_post = str(http_method or "").upper() == "POST"
    sapi_type = _sapi_content_type(content_type) if is_post else ""
    form = {}
    if sapi_type == _FORM:
        raw_form = _parse_urlencoded(_as_bytes(body), MAX_INPUT_VARS, MAX_INPUT_NESTING, True)
        form = _export_top(raw_form)
    elif sapi_type == _MULTIPART:
        form = assemble_php_pairs(form_pairs or ())
    # HttpRequest::__construct: array_merge($_GET, $_POST)
    params = _array_merge(_export_top(query), form)
    if is_post and not form:
        # php://input is empty for multipart/form-data, so such a body adds nothing here
        raw = b"" if sapi_type == _MULTIPART else _as_bytes(body).strip(_PHP_TRIM_BYTES)
        params.update(_raw_body_params(raw, content_type))  # array_replace: body wins
    return params


def _raw_body_params(raw: bytes, content_type: str | None) -> dict:
    """CRestUtil::getRequestData for an empty $_POST: Json::decode or parse_str of the body."""
    kind = _BITRIX_TYPE_PARAMS.sub("", str(content_type or "")).strip(" \t\n\r\0\x0b")
    if kind == "application/json":  # Bitrix compares case-sensitively
        return decode_json_body(raw)
    return parse_php_query(raw) if raw else {}


def _sapi_content_type(content_type: str | None) -> str:
    """The MIME type as PHP's SAPI matches it: cut at ';', ',' or ' ', ASCII lower-cased."""
    return _SAPI_TYPE_END.split(str(content_type or ""), maxsplit=1)[0].translate(_ASCII_LOWER)


def _parse_urlencoded(data: bytes, max_vars: int, max_depth: int, post: bool) -> _PhpArray:
    """Split, decode and register name=value pieces as $_GET/parse_str or $_POST does."""
    if post:
        # php_std_post_handler registers a variable before counting it, so one more gets in;
        # the rest of the body is never split (a body of "&&&…" costs no memory).
        limit = max(max_vars + 1, 0)
        pieces = data.split(b"&", limit)
        if len(pieces) > limit:
            pieces.pop()
        elif not pieces[-1]:  # add_post_var() makes no piece after a final "&"
            pieces.pop()
    else:
        # php_default_treat_data works on a C string and strtok() skips empty pieces
        pieces = [piece for piece in data.split(b"\0", 1)[0].split(b"&") if piece]
        limit = max_vars
    top = _PhpArray()
    for piece in pieces[: max(limit, 0)]:
        name, _, value = piece.partition(b"=")
        _register(top, _url_text(name), _url_text(value), max_depth)
    return top


def _register(top: _PhpArray, name: str, value, max_depth: int) -> None:
    """php_register_variable_ex(): store one name=value pair, building nested arrays."""
    name = name.split("\0", 1)[0].lstrip(" ")  # a C string; leading spaces are ignored
    bracket = name.find("[")
    base = (name if bracket < 0 else name[:bracket]).replace(" ", "_").replace(".", "_")
    if not base:
        return
    table, key, pos, level = top, base, bracket, 0
    while pos >= 0:
        level += 1
        if level > max_depth:  # php-src deletes the whole top-level variable
            top.pop(_php_key(base), None)
            return
        start = pos + 1
        probe = start + 1 if name[start : start + 1] and name[start] in _C_SPACE else start
        if name.startswith("]", probe):
            sub, close = None, probe  # "[]" or "[ ]": append
        else:
            close = name.find("]", probe)
            if close < 0:  # an unclosed "[" is no index: PHP 8 mangles it into the name
                if level == 1:
                    key = base + "_" + name[start:].translate(_UNCLOSED_MANGLE)
                break
            sub = name[start:close]
        table = _descend(table, key, name)
        if table is None:
            return
        key = sub
        pos = close + 1 if name.startswith("[", close + 1) else -1  # text after "]" is ignored
    _store(table, key, value, name)


def _descend(table: _PhpArray, key: str | None, name: str) -> _PhpArray | None:
    """Step into ``table[key]`` (a new appended array for None), replacing a scalar there."""
    if key is not None:
        if _forbidden(key, name):
            return None
        key = _php_key(key)
        if isinstance(table.get(key), _PhpArray):
            return table[key]
    child = _PhpArray()
    return child if table.put(key, child) else None


def _store(table: _PhpArray, key: str | None, value, name: str) -> None:
    """Set the final element: a later duplicate overwrites in place, None appends."""
    if key is None:
        table.put(None, value)
    elif not _forbidden(key, name):
        table.put(_php_key(key), value)


def _forbidden(key: str, name: str) -> bool:
    """php_is_forbidden_variable_name(): a key made to look like a __Host-/__Secure- cookie."""
    return any(key.startswith(p) and not name.startswith(p) for p in _FORBIDDEN_PREFIXES)


def _php_key(key: str) -> int | str:
    """ZEND_HANDLE_NUMERIC_STR: canonical ASCII decimal in int64 range is an int ("-0" is not)."""
    return canonical_int_key(key)


def _is_list(array: dict) -> bool:
    """True when the keys are exactly 0..n-1 in insertion order."""
    return all(key == index for index, key in enumerate(array))


def _export(value):
    """A built PHP array as a list (keys 0..n-1) or dict; scalars unchanged."""
    if not isinstance(value, _PhpArray):
        return value
    items = {key: _export(item) for key, item in value.items()}
    return list(items.values()) if _is_list(items) else items


def _export_top(top: _PhpArray) -> dict:
    """The top level as a plain dict, never a list."""
    return {key: _export(item) for key, item in top.items()}


def _array_merge(first: dict, second: dict) -> dict:
    """PHP array_merge(): string keys overwrite in place, integer keys are renumbered."""
    merged: dict = {}
    index = 0
    for source in (first, second):
        for key, value in source.items():
            if isinstance(key, int):
                key, index = index, index + 1
            merged[key] = value
    return merged


def _url_text(raw: bytes) -> str:
    """php_url_decode() ("+" is a space, bad escapes stay literal), then UTF-8 with U+FFFD."""
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")


def _as_bytes(data) -> bytes:
    """Request data as bytes; a str is UTF-8 encoded (lone surrogates pass through)."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    return b""


def _as_text(name) -> str:
    """A form field name as text."""
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).decode("utf-8", "replace")
    return name if isinstance(name, str) else str(name)


def _json_object(obj: dict) -> dict | list:
    """A JSON object as json_decode($x, true) builds it: PHP keys, a list when keyed 0..n-1.

    The decoder's own dict already is PHP's array for a repeated key (the first place, the
    last value), and turning decimal keys into integers maps distinct keys to distinct keys,
    so only an object with a key that may be decimal is built again."""
    if not obj:
        return []
    for key in obj:
        if key[:1] in _NUMERIC_START:
            array = {_php_key(key): value for key, value in obj.items()}
            return list(array.values()) if _is_list(array) else array
    return obj


def _json_int(text: str) -> int | float:
    """A JSON integer as PHP reads it: outside int64 it becomes a float."""
    if len(text) <= 20:
        number = int(text)
        if INT_MIN <= number <= INT_MAX:
            return number
    return float(text)


def _json_constant(name: str):
    """PHP's JSON parser has no NaN or Infinity literals."""
    raise ValueError(f"not JSON: {name}")


# One decoder for every body (json.loads with hooks would build one per call).
_JSON_DECODER = json.JSONDecoder(object_hook=_json_object, parse_int=_json_int,
                                 parse_constant=_json_constant)


def _json_acceptable(value) -> bool:
    """PHP's extra refusals: 512 nested containers (depth starts at 1) or an unpaired surrogate."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):  # only a lone \\uD800-\\uDFFF escape yields one
                return False
        elif isinstance(item, (list, dict)):
            if depth >= JSON_MAX_DEPTH:  # json_parser.y PHP_JSON_DEPTH_INC
                return False
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item if isinstance(key, str))
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
    return True
