"""Property-based fuzzing of the REST surface: decoder, ATTACH, URLs and headers.

The property everywhere: an answer is a success (200) or a Bitrix-shaped error
``{"error": str, "error_description": str}`` with a 4xx status (XML for the XML transport); never a
500, a traceback or a hang; and data stored before the run is unchanged after it.

Budget: each property runs ``DEFAULT_EXAMPLES`` derandomized examples (the same ones on every run,
so CI is repeatable). ``B24EMU_FUZZ_EXAMPLES=<n>`` runs n random examples per property instead.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import quote

import pytest
from b24emu import php
from b24emu.methods import attach as attach_rules
from b24emu.rest import params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_ENV_EXAMPLES = os.environ.get("B24EMU_FUZZ_EXAMPLES", "").strip()
FUZZ_EXAMPLES = int(_ENV_EXAMPLES) if _ENV_EXAMPLES else None
HOOK = "/rest/1/devtoken/"
ADD = HOOK + "im.notify.personal.add.json"
FORM = "application/x-www-form-urlencoded"
HANG_SECONDS = 60  # a guard against hangs only; no test asserts how fast anything is


def budget(default: int):
    """Hypothesis settings: `default` derandomized examples, or the opt-in random budget."""
    return settings(
        max_examples=FUZZ_EXAMPLES or default,
        deadline=None,
        derandomize=FUZZ_EXAMPLES is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


@pytest.fixture
def settings_off(settings):
    """The test settings without the request-rate limit (fuzzing sends thousands of requests)."""
    return replace(settings, rate_limit="off")


@pytest.fixture
def app(settings_off, clock):
    from b24emu import create_app

    return create_app(settings_off, clock=clock)


@contextmanager
def hang_guard():
    """Fail instead of hanging forever (SIGALRM; only where signals are available)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise AssertionError(f"no answer within {HANG_SECONDS} s: the emulator hangs")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_answer(response, head: bool = False) -> dict | None:
    """Assert the property on one answer; returns the parsed JSON body (None for XML, HEAD)."""
    status = response.status_code
    body = response.get_data()
    assert b"Traceback" not in body
    assert status == 200 or 400 <= status < 500, (status, body[:300])
    if head:
        assert body == b""
        return None
    content_type = response.headers.get("Content-Type", "")
    if content_type.startswith("text/xml"):
        root = ET.fromstring(body)
        assert root.tag == "response"
        if status != 200:
            assert [child.tag for child in root] == ["error", "error_description"], body[:300]
        return None
    assert content_type == "application/json; charset=utf-8", (status, content_type, body[:300])
    data = json.loads(body)
    assert isinstance(data, dict)
    if status == 200:
        assert "result" in data and "time" in data, body[:300]
    else:
        assert isinstance(data.get("error"), str) and data["error"], body[:300]
        assert isinstance(data.get("error_description"), str), body[:300]
        assert "time" not in data
    return data


def call(client, *args, **kwargs):
    with hang_guard():
        response = client.open(*args, **kwargs)
    return response, check_answer(response, head=kwargs.get("method") == "HEAD")


class Sentinel:
    """A notification stored before fuzzing; it must read back unchanged afterwards."""

    def __init__(self, client, db_path: str):
        self.db_path = db_path
        reply = client.post(ADD, json={
            "USER_ID": 2, "MESSAGE": "sentinel [b]kept[/b]", "TAG": "sentinel-tag-5c0ffee",
            "ATTACH": [{"MESSAGE": "kept"}, {"LINK": {"NAME": "x", "LINK": "https://x.test/"}}],
        })
        assert reply.status_code == 200
        self.id = reply.get_json()["result"]
        self.row = self.read()
        assert self.row is not None

    def read(self):
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute("SELECT * FROM notifications WHERE id = ?", [self.id]).fetchone()

    def assert_intact(self) -> None:
        assert self.read() == self.row
        with sqlite3.connect(self.db_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.fixture
def sentinel(client, settings_off) -> Sentinel:
    return Sentinel(client, settings_off.db)


# --- strategies -----------------------------------------------------------------------------

FORM_TOKENS = [
    "a", "b", "USER_ID", "MESSAGE", "ATTACH", "TAG", "auth", "=", "&", "&&", "[", "]", "[]", "[[",
    "]]", "[ ]", "a[[]", "a]b[", "%5B", "%5D", "%5b%5d", "%", "%z", "%zz", "%ff", "%fe", "%00",
    "%C3", "%E2%80", "%C3%A9", "+", "%20", " ", ".", "_", "__Host-", "__Secure-", "0", "1", "2",
    "-1", "-0", "9223372036854775807", "9223372036854775808", "1e3", "é", "\u2028", "\x00", ";",
    "#", "?", "\\", "\"", "'", "<b>", "#BR#", "[BR]",
]
BASE_FORMS = [b"", b"USER_ID=2&MESSAGE=m&", b"USER_ID=2&MESSAGE=m&ATTACH[0][MESSAGE]=x&"]


@st.composite
def form_bodies(draw) -> bytes:
    """urlencoded data: token soup, raw bytes, deep brackets or thousands of variables."""
    kind = draw(st.sampled_from(["tokens", "bytes", "deep", "many"]))
    if kind == "tokens":
        tokens = draw(st.lists(st.sampled_from(FORM_TOKENS), max_size=40))
        tail = "".join(tokens).encode("utf-8", "surrogatepass")
    elif kind == "bytes":
        tail = draw(st.binary(max_size=200))
    elif kind == "deep":
        depth = draw(st.integers(0, 200))
        key = draw(st.sampled_from(["[x]", "[]", "[0]", "[ ]", "[[", "]["]))
        tail = b"ATTACH" + key.encode() * depth + b"=1"
    else:
        count = draw(st.integers(900, 3000))
        tail = b"&".join(b"v%d[]=%d" % (index, index) for index in range(count))
    return draw(st.sampled_from(BASE_FORMS)) + tail


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 2)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_keys = st.sampled_from(["USER_ID", "MESSAGE", "ATTACH", "TAG", "0", "1", "-1", "auth",
                             "start", "cmd"]) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(json_keys, children,
                                                                      max_size=5),
    max_leaves=25,
)


@st.composite
def json_bodies(draw) -> bytes:
    """Valid JSON of any shape, deep nesting, huge numbers, or broken JSON."""
    kind = draw(st.sampled_from(["object", "any", "deep", "number", "broken", "bytes"]))
    if kind == "object":
        value = draw(st.dictionaries(json_keys, json_values, max_size=6))
        value.setdefault("USER_ID", draw(st.sampled_from([2, "2", 0, -1, "x", [2], 2**70])))
        value.setdefault("MESSAGE", draw(json_values))
        return json.dumps(value).encode()
    if kind == "any":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        depth = draw(st.integers(1, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + "1" + closer * depth
        return ('{"USER_ID":2,"MESSAGE":"m","ATTACH":' + inner + "}").encode()
    if kind == "number":
        digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=5000))
        exponent = draw(st.sampled_from(["", "e999", "e-999", ".5", "E+400"]))
        return ('{"USER_ID":' + digits + exponent + ',"MESSAGE":"m"}').encode()
    if kind == "broken":
        text = json.dumps(draw(json_values))
        cut = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["", "}", "]", ",", "NaN", "Infinity", "\\ud800", "'", "\x00"]))
        return (text[:cut] + junk).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=300))


ATTACH_KEYS = [
    "BLOCKS", "COLOR", "COLOR_TOKEN", "DESCRIPTION", "ID", "USER", "LINK", "RICH_LINK", "MESSAGE",
    "GRID", "IMAGE", "FILE", "DELIMITER", "NAME", "VALUE", "DISPLAY", "TEXT", "AS_DESCRIPTION",
    "NETWORK_ID", "USER_ID", "CHAT_ID", "BOT_ID", "AVATAR", "AVATAR_TYPE", "PREVIEW",
    "PREVIEW_SIZE", "WIDTH", "HEIGHT", "SIZE", "DESC", "HTML", "EXTRA_IMAGE", "0", "1",
]
ATTACH_STRINGS = [
    "", "0", "1", "x", "/x", "http://a.test/p", "https://b.test/", "javascript:x", "#fff",
    "#12345g", "TRANSPARENT", "CHAT", "LINE", "CARD", "COLUMN", "ROW", "Y", "N", "primary",
    "<b>bold</b>", "<a href='/x'>l</a>", "<font color=#fff>c</font>", "<div><span>", "#BR#",
    "[BR]", "\\n", "\\t", '\\"', "\\\\", "\r\n", "\u2028", "\x85", "\x00", "é", "\U0001F600",
    "N123", "&x", "-5", "1e400", "{", "[", "'", '"', ":", ",",
]
attach_scalars = (
    st.sampled_from(ATTACH_STRINGS) | st.text(max_size=12) | st.integers(-3, 2**64)
    | st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False)
)
attach_values = st.recursive(
    attach_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(ATTACH_KEYS) | st.text(max_size=6), children, max_size=5),
    max_leaves=30,
)


def to_js(value, quote_char: str) -> str:
    """A lenient JS-object literal (single quotes or bare keys) as clients hand-write them."""
    if isinstance(value, dict):
        items = ",".join(f"{quote_char}{key}{quote_char}:{to_js(item, quote_char)}"
                         for key, item in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_js(item, quote_char) for item in value) + "]"
    if value is None:
        return "null"
    return f"{quote_char or chr(39)}{php.to_str(value)}{quote_char or chr(39)}"


@st.composite
def attach_payloads(draw):
    """An ATTACH as clients send it: nested data, a JSON string, a JS-object string, or huge."""
    kind = draw(st.sampled_from(["data", "blocks", "json", "js", "huge", "deep", "text"]))
    value = draw(attach_values)
    if kind == "blocks":
        return {"BLOCKS": draw(st.lists(attach_values, max_size=5)), "COLOR": draw(attach_scalars),
                "DESCRIPTION": draw(attach_scalars)}
    if kind == "json":
        return json.dumps(value)
    if kind == "js":
        return to_js(value, draw(st.sampled_from(["'", '"', ""])))
    if kind == "huge":
        size = draw(st.integers(1, 80_000))
        block = draw(st.sampled_from(["MESSAGE", "DESCRIPTION"]))
        return {"BLOCKS": [{"MESSAGE": "x" * size}], "DESCRIPTION": "d"} if block == "DESCRIPTION" \
            else [{"MESSAGE": "é" * size}]
    if kind == "deep":
        text = draw(st.booleans())  # deeper raw JSON is fuzzed by json_bodies()
        depth = draw(st.integers(1, 2000 if text else 400))
        nested = "[" * depth + "'x'" + "]" * depth if text else [{"MESSAGE": "x"}]
        if not text:
            for _ in range(depth):
                nested = [nested]
        return nested
    if kind == "text":
        return draw(st.text(alphabet=st.sampled_from("{}[]'\":,\\ uTX0aé\n"), max_size=300))
    return value


url_segments = st.sampled_from([
    "", ".", "..", "%2e%2e", "%2F", "%00", "%ff", "%", "1", "0", "-1", "devtoken", "DEVTOKEN",
    "im.notify.personal.add", "IM.NOTIFY.PERSONAL.ADD.JSON", "im.notify.personal.add.xml",
    "batch", "user.current", "server.time", ".json", ".xml", "x.XML", "é", "\u202e", "😀", " ",
    "'", "\"", "%27%20OR%201=1", ";", "?", "#", "&", "=", "+",
]) | st.text(max_size=12)


# --- the parameter decoder, called directly ------------------------------------------------

def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _leaves(value) -> int:
    if isinstance(value, dict):
        return sum(map(_leaves, value.values()))
    if isinstance(value, list):
        return sum(map(_leaves, value))
    return 1


def _check_decoded(decoded) -> None:
    assert isinstance(decoded, dict)
    stack = [decoded]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            assert all(isinstance(key, (str, int)) and not isinstance(key, bool) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@budget(500)
@given(data=form_bodies(), post=st.booleans())
def test_urlencoded_decoder_is_total_and_bounded(data, post):
    decoded = (
        params.decode_request(http_method="POST", query_string=b"", content_type=FORM, body=data)
        if post else params.parse_php_query(data)
    )
    _check_decoded(decoded)
    for value in decoded.values():
        assert isinstance(value, (str, list, dict))
        assert _depth(value) <= params.MAX_INPUT_NESTING
    # every leaf is one registered variable; a POST body gets max_input_vars + 1 (see params.py)
    assert sum(map(_leaves, decoded.values())) <= params.MAX_INPUT_VARS + 1
    for value in decoded.values():  # leaves are text; invalid UTF-8 became U+FFFD
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                item.encode("utf-8")
            else:
                stack.extend(item.values() if isinstance(item, dict) else item)


@budget(500)
@given(body=json_bodies())
def test_json_decoder_is_total(body):
    decoded = params.decode_json_body(body)
    _check_decoded(decoded)
    try:
        plain = json.loads(body)
    except (ValueError, RecursionError):
        assert decoded == {}
        return
    if isinstance(plain, dict) and decoded and all(not k.lstrip("-").isdigit() for k in plain):
        assert list(decoded) == list(plain)  # an object's keys keep their order


php_values = st.recursive(  # values a PHP array can hold: int64, finite floats, text
    st.none() | st.booleans() | st.integers(php.INT_MIN, php.INT_MAX) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(json_keys, children,
                                                                      max_size=5),
    max_leaves=25,
)


@budget(400)
@given(value=php_values)
def test_json_decoder_reads_what_json_encode_wrote(value):
    body = {"V": value}
    decoded = params.decode_json_body(php.json_dumps(body).encode())
    assert list(decoded) == ["V"]
    # PHP's own encoding decodes again to the same PHP value (floats as PHP spells them)
    assert php.json_dumps(decoded) == php.json_dumps(body)


# --- ATTACH, called directly ---------------------------------------------------------------

@budget(500)
@given(value=attach_payloads())
def test_attach_normalizer_is_total(value):
    with hang_guard():
        attach = attach_rules.normalize_attach(value, attach_id=7, pick_color=lambda: "#df532d")
    if attach is None:
        return
    assert attach["ID"] == 7
    assert attach["BLOCKS"], "an attach with no block must be None"
    assert isinstance(attach["DESCRIPTION"], str)
    length = attach_rules.attach_json_length(attach)
    assert isinstance(length, int) and length > 0
    try:
        attach_rules.check_attach(value, attach_id=7, max_bytes=30720,
                                  pick_color=lambda: "#df532d")
    except attach_rules.AttachOversize:
        assert length > 30720
    else:
        assert length <= 30720


# --- over HTTP -----------------------------------------------------------------------------

def test_form_bodies_over_http(client, sentinel):
    @budget(300)
    @given(body=form_bodies(), in_query=st.booleans())
    def run(body, in_query):
        if in_query:
            call(client, ADD + "?" + body.decode("latin-1"), method="GET")
        else:
            call(client, ADD, method="POST", data=body, content_type=FORM)

    run()
    sentinel.assert_intact()


def test_json_bodies_over_http(client, sentinel):
    @budget(400)
    @given(body=json_bodies(), content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain",
         "application/json;", " application/json"]))
    def run(body, content_type):
        call(client, ADD, method="POST", data=body, content_type=content_type)

    run()
    sentinel.assert_intact()


def test_attach_over_webhook(client, sentinel, settings_off):
    @budget(400)
    @given(attach=attach_payloads(), as_form=st.booleans(), bad_utf8=st.booleans())
    def run(attach, as_form, bad_utf8):
        payload = {"USER_ID": 2, "MESSAGE": "attach fuzz", "ATTACH": attach}
        if as_form:
            body = _form_encode(payload)
            if bad_utf8:
                body += b"&ATTACH[0][MESSAGE]=%ff%c3%28&ATTACH[1][LINK][NAME]=\xe2\x82"
            response, data = call(client, ADD, method="POST", data=body, content_type=FORM)
        else:
            response, data = call(client, ADD, method="POST", json=payload)
        if response.status_code == 200:
            stored = _row(settings_off.db, data["result"])
            assert stored is not None and stored[0] == 2
            if stored[1]:
                assert json.loads(stored[1])["BLOCKS"]
        else:
            assert data["error"] in ("ATTACH_ERROR", "ATTACH_OVERSIZE"), data

    run()
    sentinel.assert_intact()


def test_urls_under_rest(client, sentinel):
    @budget(400)
    @given(segments=st.lists(url_segments, max_size=6), long=st.integers(0, 9000),
           encode=st.booleans(), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]))
    def run(segments, long, encode, method):
        if long > 8000:
            segments = [*segments, "a" * (long * 3)]
        parts = [quote(segment, safe="") if encode else segment for segment in segments]
        path = "/rest/" + "/".join(parts)
        call(client, path, method=method)

    run()
    sentinel.assert_intact()


header_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",),
                           max_codepoint=0x2FF), max_size=60)


def test_headers(client, sentinel):
    @budget(400)
    @given(
        content_type=st.sampled_from([
            FORM, "application/json", "multipart/form-data", "multipart/form-data; boundary=",
            "multipart/form-data; boundary=x", "text/xml", "application/x-www-form-urlencoded;;",
            "", ";", "*/*"]) | header_text,
        authorization=st.sampled_from(["", "Bearer", "Bearer ", "Bearer devaccesstoken",
                                       "Bearer x'--", "Basic Zm9vOmJhcg==", "bearer \x00"])
        | header_text,
        host=st.sampled_from(["localhost", "", "[::1", "a:b:c", "é.test", "x" * 300, "::",
                              "localhost:99999999"]) | header_text,
        length=st.none() | st.sampled_from(["", "0", "1", "-1", "abc", "99999999999999999999",
                                            "1e3", "+5"]) | st.integers(0, 400).map(str),
        body=st.sampled_from([b"", b"USER_ID=2&MESSAGE=hi", b'{"USER_ID":2,"MESSAGE":"hi"}',
                              b"--x\r\nContent-Disposition: form-data; name=\"MESSAGE\"\r\n\r\nv"
                              b"\r\n--x--\r\n"]) | st.binary(max_size=80),
        path=st.sampled_from([ADD, "/rest/im.notify.personal.add.xml", HOOK + "batch",
                              "/rest/im.notify.personal.add"]),
    )
    def run(content_type, authorization, host, length, body, path):
        overrides = {"HTTP_HOST": host}
        if length is not None:
            overrides["CONTENT_LENGTH"] = length
        call(client, path, method="POST", data=body,
             headers={"Content-Type": content_type, "Authorization": authorization},
             environ_overrides=overrides)

    run()
    sentinel.assert_intact()


def _form_encode(payload: dict) -> bytes:
    """PHP http_build_query-like brackets for nested data."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append((prefix, php.to_str(value)))

    for key, value in payload.items():
        walk(key, value)
    return "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in pairs).encode()


def _row(db_path: str, notification_id: int):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT recipient_id, attach FROM notifications WHERE id = ?",
                            [notification_id]).fetchone()


# --- regressions: the exact inputs fuzzing found ----------------------------------------------


@pytest.mark.parametrize("declared", ["100", "99999"])
def test_regression_content_length_longer_than_body(client, declared):
    # The body ends before the declared length (a client that disconnects mid-body):
    # this was a 500 INTERNAL_SERVER_ERROR with a logged traceback.
    response, data = call(client, ADD, method="POST", data=b"USER_ID=2&MESSAGE=hi",
                          content_type=FORM, environ_overrides={"CONTENT_LENGTH": declared})
    assert response.status_code == 400
    assert data == {"error": "BAD_REQUEST",
                    "error_description": "The request body is shorter than its Content-Length"}


def test_regression_multipart_body_shorter_than_declared(client):
    body = b'--x\r\nContent-Disposition: form-data; name="MESSAGE"\r\n\r\nv\r\n--x--\r\n'
    response, data = call(client, ADD, method="POST", data=body,
                          content_type="multipart/form-data; boundary=x",
                          environ_overrides={"CONTENT_LENGTH": "500"})
    assert (response.status_code, data["error"]) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("host", ["a" * 10000, "x" * 64 + ".test"])
def test_regression_unparsable_host_header(client, host):
    # A DNS label over 63 characters: werkzeug refuses the Host before routing, and that was
    # Flask's HTML error page, not a REST error.
    response, data = call(client, ADD, method="GET", environ_overrides={"HTTP_HOST": host})
    assert response.status_code == 400
    assert data["error"] == "BAD_REQUEST"
    xml, _ = call(client, "/rest/1/devtoken/im.notify.personal.add.xml", method="GET",
                  environ_overrides={"HTTP_HOST": host})
    assert xml.get_data().startswith(
        b'<response><error>BAD_REQUEST</error>')


def test_valid_characters_stay_literal_in_query(client, settings_off):
    # sanity anchor for the fuzzers: odd but valid input is stored exactly as PHP would read it
    query = "USER_ID=2&MESSAGE=" + quote("a+b %zz é\u2028", safe="%") + "%ff"
    response, data = call(client, ADD + "?" + query, method="GET")
    assert response.status_code == 200
    with sqlite3.connect(settings_off.db) as conn:
        message = conn.execute("SELECT message FROM notifications WHERE id = ?",
                               [data["result"]]).fetchone()[0]
    assert message == "a+b %zz é\u2028\ufffd"

