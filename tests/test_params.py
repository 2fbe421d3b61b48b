"""PHP request decoding (b24emu.rest.params): php-src rules, Bitrix merge, real client requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from b24emu.rest.params import (
    DecodeLimitError,
    assemble_php_pairs,
    decode_json_body,
    decode_request,
    parse_php_query,
)

CAPTURES = Path(__file__).parent / "data" / "wire-captures"
INT_MAX = 2**63 - 1
DEEP_64 = "a" + "[x]" * 64
DEEP_65 = "a" + "[x]" * 65
NESTED_64: object = "v"
for _ in range(64):
    NESTED_64 = {"x": NESTED_64}


# --- parse_str / $_GET --------------------------------------------------------------------------

QUERY_CASES = [
    # splitting and percent-decoding
    ("", {}),
    ("a=1&b=2", {"a": "1", "b": "2"}),
    ("&&a=1&&", {"a": "1"}),
    ("a", {"a": ""}),
    ("a=", {"a": ""}),
    ("a=b=c", {"a": "b=c"}),
    ("a=x+y%20z", {"a": "x y z"}),
    ("a=%2B%26%3D", {"a": "+&="}),
    ("a=%zz%4%", {"a": "%zz%4%"}),
    ("a=%C3%BC", {"a": "ü"}),
    ("a=%FF%C3", {"a": "\ufffd\ufffd"}),
    ("a%5Bb%5D=1", {"a": {"b": "1"}}),
    ("a=1%002", {"a": "1\x002"}),
    ("a%00b=1", {"a": "1"}),
    # the base name
    ("%20%20a=1", {"a": "1"}),
    ("a%20b.c=1", {"a_b_c": "1"}),
    ("a.b[c.d]=1", {"a_b": {"c.d": "1"}}),
    ("a b[c d]=1", {"a_b": {"c d": "1"}}),
    ("=1", {}),
    ("[a]=1", {}),
    ("%20[a]=1", {}),
    ("[ATTACH][0][MESSAGE]=x&b=2", {"b": "2"}),
    ("a[b=1", {"a_b": "1"}),
    ("a[b.c d[e=1", {"a_b_c_d_e": "1"}),
    ("a[=1", {"a_": "1"}),
    ("a[b][c=1", {"a": {"b": "1"}}),
    ("a[][c=1", {"a": ["1"]}),
    ("a.b[=1", {"a_b_": "1"}),
    # nesting
    ("a[b][c]=x", {"a": {"b": {"c": "x"}}}),
    ("a[0]=x&a[1]=y", {"a": ["x", "y"]}),
    ("a[1]=x&a[0]=y", {"a": {1: "x", 0: "y"}}),
    ("a[0][0]=x", {"a": [["x"]]}),
    ("a[b]c=1", {"a": {"b": "1"}}),
    ("a[b]c[d]=1", {"a": {"b": "1"}}),
    ("a[b]]=1", {"a": {"b": "1"}}),
    ("a[b][=1", {"a": {"b": "1"}}),
    ("a[[b]]=1", {"a": {"[b": "1"}}),
    ("a[ b]=1", {"a": {" b": "1"}}),
    ("a[  ]=1", {"a": {"  ": "1"}}),
    ("a[b ]=1", {"a": {"b ": "1"}}),
    ("a[]=1", {"a": ["1"]}),
    ("a[ ]=1", {"a": ["1"]}),
    ("a[%09]=1", {"a": ["1"]}),
    ("a[]=x&a[]=y", {"a": ["x", "y"]}),
    ("a[][]=x&a[][]=y", {"a": [["x"], ["y"]]}),
    ("a[][b]=x&a[][b]=y", {"a": [{"b": "x"}, {"b": "y"}]}),
    # integer keys and appending
    ("a[5]=x&a[]=y", {"a": {5: "x", 6: "y"}}),
    ("a[5]=x&a[2]=y&a[]=z", {"a": {5: "x", 2: "y", 6: "z"}}),
    ("a[x]=1&a[]=2", {"a": {"x": "1", 0: "2"}}),
    ("a[-5]=x&a[]=y", {"a": {-5: "x", -4: "y"}}),
    ("a[05]=x", {"a": {"05": "x"}}),
    ("a[-0]=x", {"a": {"-0": "x"}}),
    ("a[%2B1]=x", {"a": {"+1": "x"}}),
    ("a[+1]=x", {"a": {" 1": "x"}}),
    ("a[1.0]=x", {"a": {"1.0": "x"}}),
    ("a[%D9%A1]=x", {"a": {"\u0661": "x"}}),
    ("a[0]=x", {"a": ["x"]}),
    ("7=x", {7: "x"}),
    ("a[9223372036854775807]=x", {"a": {INT_MAX: "x"}}),
    ("a[9223372036854775807]=x&a[]=y", {"a": {INT_MAX: "x"}}),
    ("a[9223372036854775806]=x&a[]=y&a[]=z", {"a": {INT_MAX - 1: "x", INT_MAX: "y"}}),
    ("a[9223372036854775808]=x", {"a": {"9223372036854775808": "x"}}),
    ("a[-9223372036854775808]=x", {"a": {-(2**63): "x"}}),
    # overwriting
    ("a=1&a=2", {"a": "2"}),
    ("a=1&b=2&a=3", {"a": "3", "b": "2"}),
    ("a=1&a[b]=2", {"a": {"b": "2"}}),
    ("a[b]=2&a=1", {"a": "1"}),
    ("a[b]=1&a[b][c]=2", {"a": {"b": {"c": "2"}}}),
    ("a[x]=1&a[y]=2&a[x]=3", {"a": {"x": "3", "y": "2"}}),
    ("a[]=1&a=2&a[]=3", {"a": ["3"]}),
    # php_is_forbidden_variable_name (__Host-/__Secure- cookie-name protection)
    ("__Host-a=1", {"__Host-a": "1"}),
    ("._Host-a=1", {}),
    ("%20__Secure-a=1", {"__Secure-a": "1"}),
    ("._Secure-a=1", {}),
    (".._Secure-a=1", {"___Secure-a": "1"}),
    ("a[__Host-x]=1", {"a": []}),
    ("__Host-a[__Host-x]=1", {"__Host-a": {"__Host-x": "1"}}),
    # max_input_nesting_level: 64 brackets pass, a 65th drops the whole top-level variable
    (DEEP_64 + "=v", {"a": NESTED_64}),
    (DEEP_65 + "=v", {}),
    ("a=1&b=2&" + DEEP_65 + "=v", {"b": "2"}),
    (DEEP_65 + "=v&a=1", {"a": "1"}),
    (DEEP_64 + "[=v", {}),
    ("a" + "[]" * 65 + "=v&b=1", {"b": "1"}),
]


@pytest.mark.parametrize(("query", "expected"), QUERY_CASES, ids=[c[0][:40] for c in QUERY_CASES])
def test_parse_php_query(query, expected):
    assert parse_php_query(query) == expected
    assert parse_php_query(query.encode()) == expected


def test_parse_php_query_keeps_insertion_order():
    assert list(parse_php_query("z=1&a=2&m=3")) == ["z", "a", "m"]
    assert list(parse_php_query("a[z]=1&a[b]=2")["a"]) == ["z", "b"]
    assert list(parse_php_query("a=1&b=2&a[c]=3")) == ["a", "b"]


def test_parse_php_query_top_level_is_never_a_list():
    assert parse_php_query("0=a&1=b") == {0: "a", 1: "b"}
    assert type(parse_php_query("0=a&1=b")) is dict


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a=1\x00&b=2", {"a": "1"}),
        (b"\x00a=1", {}),
        (b"a=\xff\xfe", {"a": "\ufffd\ufffd"}),
        (b"a\xff=1", {"a\ufffd": "1"}),
        (b"a[\xc3\xbc]=1", {"a": {"ü": "1"}}),
    ],
)
def test_parse_php_query_raw_bytes(data, expected):
    assert parse_php_query(data) == expected


def test_max_vars_counts_each_piece_and_skips_empty_ones():
    query = "&".join(f"v{i}=x" for i in range(1005))
    parsed = parse_php_query(query)
    assert len(parsed) == 1000
    assert "v999" in parsed and "v1000" not in parsed
    assert parse_php_query("&&&" + query) == parsed
    assert parse_php_query("a=1&a=2&a=3&b=4", max_vars=3) == {"a": "3"}
    assert parse_php_query("[x]=1&a=2", max_vars=1) == {}
    assert parse_php_query("a[b][c]=1", max_depth=1) == {}
    assert parse_php_query("a[b]=1", max_depth=1) == {"a": {"b": "1"}}


# --- multipart fields ---------------------------------------------------------------------------

PAIR_CASES = [
    ([("a", "1"), ("b[c]", "2")], {"a": "1", "b": {"c": "2"}}),
    ([("a[]", "x"), ("a[]", "y")], {"a": ["x", "y"]}),
    ([("a b.c", "1")], {"a_b_c": "1"}),
    ([("[x]", "1"), ("", "2")], {}),
    ([("a", "1"), ("a", "2")], {"a": "2"}),
    ([("a%5Bb%5D", "1")], {"a%5Bb%5D": "1"}),
    ([("a[b", "1")], {"a_b": "1"}),
    ([("a\x00b", "1\x002")], {"a": "1\x002"}),
    ([("ATTACH[BLOCKS][0][MESSAGE]", "hi")], {"ATTACH": {"BLOCKS": [{"MESSAGE": "hi"}]}}),
]


@pytest.mark.parametrize(("pairs", "expected"), PAIR_CASES)
def test_assemble_php_pairs(pairs, expected):
    assert assemble_php_pairs(pairs) == expected


def test_assemble_php_pairs_limits():
    pairs = [(f"v{i}", "x") for i in range(1500)]
    assert len(assemble_php_pairs(pairs)) == 1000
    assert assemble_php_pairs([(DEEP_65, "v"), ("b", "1")]) == {"b": "1"}
    assert assemble_php_pairs([("a", 5), ("b[]", None)]) == {"a": 5, "b": [None]}


# --- Json::decode -------------------------------------------------------------------------------

JSON_CASES = [
    (b'{"a": 1, "b": "x"}', {"a": 1, "b": "x"}),
    (b'  {"a": 1}\n', {"a": 1}),
    (b'{"a": 1.5, "b": true, "c": false, "d": null}', {"a": 1.5, "b": True, "c": False, "d": None}),
    (b'{"a": 1e2, "b": -0, "c": -0.0}', {"a": 100.0, "b": 0, "c": -0.0}),
    (b'{"a": 9223372036854775807}', {"a": INT_MAX}),
    (b'{"a": -9223372036854775808}', {"a": -(2**63)}),
    (b'{"a": 9223372036854775808}', {"a": 9223372036854775808.0}),
    (b'{"a": 123456789012345678901234567890}', {"a": 1.2345678901234568e29}),
    (b'{"a": ' + b"9" * 5000 + b"}", {"a": float("inf")}),
    (b'{"a": [1, "2"]}', {"a": [1, "2"]}),
    (b'{"a": {"0": "x", "1": "y"}}', {"a": ["x", "y"]}),
    (b'{"a": {"1": "x", "0": "y"}}', {"a": {1: "x", 0: "y"}}),
    (b'{"a": {"05": "x", "-0": "y", "7": "z"}}', {"a": {"05": "x", "-0": "y", 7: "z"}}),
    (b'{"a": {}}', {"a": []}),
    (b'{"a": 1, "b": 2, "a": 3}', {"a": 3, "b": 2}),
    (b'{"0": "x", "1": "y"}', {0: "x", 1: "y"}),
    (b'{"": 1}', {"": 1}),
    (b'{"a": "\\u00fc\\ud83d\\ude00\\u0000"}', {"a": "ü\U0001f600\x00"}),
    (b'{"a": "\xc3\xbc"}', {"a": "ü"}),
    (b'["x", {"y": 1}]', {0: "x", 1: {"y": 1}}),
    (b"[]", {}),
    (b"{}", {}),
    # scalars, invalid JSON and what PHP's parser refuses beyond Python's
    (b"", {}),
    (b"   ", {}),
    (b"null", {}),
    (b"1", {}),
    (b'"a"', {}),
    (b"true", {}),
    (b"{", {}),
    (b"{'a': 1}", {}),
    (b'{"a": 1,}', {}),
    (b'{"a": 01}', {}),
    (b'{"a": .5}', {}),
    (b'{"a": NaN}', {}),
    (b'{"a": Infinity}', {}),
    (b'{"a": -Infinity}', {}),
    (b'{"a": "\xff"}', {}),
    (b'{"a": "\xed\xa0\x80"}', {}),
    (b'\xef\xbb\xbf{"a": 1}', {}),
    (b'{"a": "\\ud800"}', {}),
    (b'{"a": "\\udc00\\ud800"}', {}),
    (b'{"\\ud800": 1}', {}),
    (b'{"a": "x\ny"}', {}),
    (b'{"a": 1} x', {}),
    (b'{"a": 1}\x00', {}),
    ('{"a": 1}'.encode("utf-16"), {}),
]


@pytest.mark.parametrize(
    ("body", "expected"), JSON_CASES, ids=[repr(b[:30]) for b, _ in JSON_CASES]
)
def test_decode_json_body(body, expected):
    assert decode_json_body(body) == expected


def _nested_json(levels: int) -> bytes:
    return b'{"a":' + b"[" * (levels - 1) + b"1" + b"]" * (levels - 1) + b"}"


def test_json_depth_is_php_default_512():
    # json_parser.y starts the depth at 1 and refuses a container once it reaches 512
    assert decode_json_body(_nested_json(511)) != {}
    assert decode_json_body(_nested_json(512)) == {}
    assert decode_json_body(b"[" * 100_000 + b"]" * 100_000) == {}
    assert decode_json_body(b"[" * 100_000) == {}


def test_json_key_order_and_list_shape():
    decoded = decode_json_body(b'{"z": 1, "a": {"b": 1, "0": 2}}')
    assert list(decoded) == ["z", "a"]
    assert list(decoded["a"]) == ["b", 0]


# --- decode_request -----------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"
REQUEST_CASES = [
    # (method, query, content type, body, form pairs, expected)
    ("GET", b"a=1&b[]=2", None, b"", None, {"a": "1", "b": ["2"]}),
    ("GET", b"a=1", "application/json", b'{"a": 2}', None, {"a": "1"}),
    ("PUT", b"a=1", "application/json", b'{"a": 2}', None, {"a": "1"}),
    ("PUT", b"a=1", FORM, b"a=2", None, {"a": "1"}),
    (
        "POST",
        b"a=1&q=1",
        "application/json",
        b'{"a": 2, "b": [1]}',
        None,
        {"a": 2, "q": "1", "b": [1]},
    ),
    ("post", b"a=1", "application/json", b'{"a": 2}', None, {"a": 2}),
    ("POST", b"a=1", "application/json; charset=utf-8", b'{"a": 2}', None, {"a": 2}),
    ("POST", b"a=1", " application/json ;x", b'{"a": 2}', None, {"a": 2}),
    ("POST", b"a=1", "application/json", b'\x00\x0b {"a": 2}\n', None, {"a": 2}),
    ("POST", b"a=1", "application/json", b"not json", None, {"a": "1"}),
    ("POST", b"a=1", "application/json", b"", None, {"a": "1"}),
    ("POST", b"a=1", "application/json", b"[5, 6]", None, {"a": "1", 0: 5, 1: 6}),
    ("POST", b"a=1", "application/json", b'"x"', None, {"a": "1"}),
    ("POST", b"", "application/json", b'{"a": {"b": 1}}', None, {"a": {"b": 1}}),
    ("POST", b"a[x]=1&a[y]=2", "application/json", b'{"a": {"z": 3}}', None, {"a": {"z": 3}}),
    # Bitrix compares its JSON type case-sensitively: other spellings are parse_str'ed
    ("POST", b"", "Application/JSON", b'{"a": 2}', None, {'{"a":_2}': ""}),
    ("POST", b"", "text/plain", b"a=2&b[c]=3", None, {"a": "2", "b": {"c": "3"}}),
    ("POST", b"", None, b"a=2", None, {"a": "2"}),
    ("POST", b"", None, b"  a=2  ", None, {"a": "2"}),
    # form bodies: PHP's SAPI lower-cases the type and cuts it at ';', ',' or ' '
    ("POST", b"a=1&q=1", FORM, b"a=2&b[c]=3", None, {"a": "2", "q": "1", "b": {"c": "3"}}),
    ("POST", b"a=1", "Application/X-WWW-Form-URLEncoded; charset=UTF-8", b"a=2", None, {"a": "2"}),
    ("POST", b"a=1", FORM + ",x", b"a=2", None, {"a": "2"}),
    ("POST", b"a=1", FORM, b"", None, {"a": "1"}),
    ("POST", b"a=1", FORM, b"[x]=2", None, {"a": "1"}),
    ("POST", b"a=1", FORM, b"a=2&a=3", None, {"a": "3"}),
    ("POST", b"a=1", FORM, b"a=1\x00x&b\x00y=2", None, {"a": "1\x00x", "b": "2"}),
    ("POST", b"", FORM, b'{"a": 2}', None, {'{"a":_2}': ""}),
    # array_merge($_GET, $_POST) renumbers integer top-level keys
    ("GET", b"5=x&a=y", None, b"", None, {0: "x", "a": "y"}),
    ("POST", b"5=x", FORM, b"7=y&a=z", None, {0: "x", 1: "y", "a": "z"}),
    ("POST", b"5=x", "application/json", b'{"7": "y"}', None, {0: "x", 7: "y"}),
    # multipart: the fields; php://input is empty, so no fields means no body parameters
    (
        "POST",
        b"a=1&q=1",
        "multipart/form-data; boundary=x",
        b"",
        [("a", "2"), ("b[]", "3")],
        {"a": "2", "q": "1", "b": ["3"]},
    ),
    ("POST", b"a=1", "multipart/form-data; boundary=x", b"a=2", [], {"a": "1"}),
    ("POST", b"a=1", "multipart/form-data; boundary=x", b"a=2", None, {"a": "1"}),
]


@pytest.mark.parametrize(
    ("method", "query", "content_type", "body", "pairs", "expected"),
    REQUEST_CASES,
    ids=[f"{c[0]}-{c[2]}-{c[3][:20]!r}" for c in REQUEST_CASES],
)
def test_decode_request(method, query, content_type, body, pairs, expected):
    decoded = decode_request(
        http_method=method,
        query_string=query,
        content_type=content_type,
        body=body,
        form_pairs=pairs,
    )
    assert decoded == expected
    assert type(decoded) is dict


def test_decode_request_body_keeps_query_key_order():
    decoded = decode_request(
        http_method="POST",
        query_string=b"a=1&b=2",
        content_type="application/json",
        body=b'{"c": 3, "a": 4}',
    )
    assert list(decoded) == ["a", "b", "c"]


def test_post_form_max_input_vars_is_off_by_one_and_counts_empty_pieces():
    # php_std_post_handler registers a piece before it counts it; "&&" is a piece there
    body = "&".join(f"v{i}=x" for i in range(1005)).encode()
    decoded = decode_request(
        http_method="POST",
        query_string=b"",
        content_type=FORM,
        body=body,
    )
    assert len(decoded) == 1001 and "v1000" in decoded and "v1001" not in decoded
    decoded = decode_request(
        http_method="POST",
        query_string=b"",
        content_type=FORM,
        body=b"&&&" + body,
    )
    assert len(decoded) == 998


# --- real client requests (shared/wire-captures) ------------------------------------------------

JSSDK_QUERY = {"bx24_sdk_ver": "2.2.0", "bx24_sdk_type": "b24-js-sdk"}
HELLO = "Hello world & co + 1 = ü"
ATTACH_LIST = [
    {"MESSAGE": "hi"},
    {"LINK": {"NAME": "x", "LINK": "https://example.com"}},
    {"DELIMITER": {"SIZE": 200, "COLOR": "#c8c8c8"}},
]
FULL_NOTIFY = {
    "USER_ID": 1,
    "MESSAGE": HELLO,
    "MESSAGE_OUT": "out msg",
    "TAG": "T1",
    "SUB_TAG": "S1",
    "ATTACH": ATTACH_LIST,
}
OAUTH_NOTIFY = {"USER_ID": 1, "MESSAGE": "oauth", "auth": "oauthAccessToken"}

# (file, request index) -> expected parameters; "cmd" is checked for its shape separately
CAPTURE_CASES = {
    ("b24jssdk.json", 0): FULL_NOTIFY,
    ("b24jssdk.json", 1): {"halt": 1, "cmd": list},
    ("b24jssdk.json", 2): {"halt": 0, "cmd": ["a", "b"]},
    ("b24jssdk.json", 3): OAUTH_NOTIFY,
    ("b24pysdk.json", 0): {
        "USER_ID": 1,
        "MESSAGE": HELLO,
        "ATTACH": {"BLOCKS": ATTACH_LIST},
    },
    ("b24pysdk.json", 1): FULL_NOTIFY,
    ("b24pysdk.json", 2): {"cmd": list, "halt": False},
    ("b24pysdk.json", 3): {"cmd": ["a", "b"], "halt": False},
    ("b24pysdk.json", 4): OAUTH_NOTIFY,
    ("bitrix24_rest.json", 0): {
        "USER_ID": "1",
        "MESSAGE": "Hello world ",
        "co___1_": " ü",
        "MESSAGE_OUT": "out msg",
        "TAG": "T1",
        "SUB_TAG": "S1",
        "start": "0",
    },
    ("bitrix24_rest.json", 1): {
        "halt": "0",
        "cmd": {"a": "im.notify.personal.add?USER_ID=1"},
        "MESSAGE": "hi",
        "start": "0",
    },
    ("fast_bitrix24.json", 0): {"halt": 0, "cmd": ["order0000000000"]},
    ("fast_bitrix24.json", 1): {"halt": 0, "cmd": ["order0000000000", "order0000000001"]},
    ("fast_bitrix24.json", 2): FULL_NOTIFY,
    ("fast_bitrix24.json", 3): {
        "halt": 0,
        "cmd": {"x": "im.notify.personal.add?USER_ID=1&MESSAGE=hi"},
    },
    ("fast_bitrix24.json", 4): OAUTH_NOTIFY,
    ("pybitrix24.json", 0): FULL_NOTIFY,
    ("pybitrix24.json", 1): {"cmd": ["a", "b"], "halt": False},
    ("pybitrix24.json", 2): {"auth": "oauthAccessToken", "USER_ID": 1, "MESSAGE": "oauth"},
}


def _capture(file: str, index: int) -> dict:
    return json.loads((CAPTURES / file).read_text(encoding="utf-8"))[index]


def _decode_capture(request: dict) -> dict:
    return decode_request(
        http_method=request["method"],
        query_string=request["query"].encode("utf-8"),
        content_type=request["headers"].get("Content-Type"),
        body=request["body"].encode("utf-8"),
    )


def _expected_cmd(request: dict, shape):
    """The cmd a capture should decode to: a list of its commands, or a dict with given keys."""
    cmd = json.loads(request["body"])["cmd"]
    if shape is list:
        return list(cmd.values()) if isinstance(cmd, dict) else cmd
    assert list(cmd) == shape
    return cmd


@pytest.mark.parametrize(("file", "index"), sorted(CAPTURE_CASES), ids=lambda v: str(v))
def test_wire_capture(file, index):
    request = _capture(file, index)
    expected = dict(CAPTURE_CASES[file, index])
    if file == "b24jssdk.json":
        expected = {"bx24_request_id": request["query"].split("=")[1].split("&")[0]}
        expected |= JSSDK_QUERY | CAPTURE_CASES[file, index]
    if isinstance(expected.get("cmd"), (list, type)):
        expected["cmd"] = _expected_cmd(request, expected["cmd"])
    decoded = _decode_capture(request)
    assert decoded == expected
    assert list(decoded) == list(expected)


def test_every_wire_capture_decodes():
    for path in sorted(CAPTURES.glob("*.json")):
        for request in json.loads(path.read_text(encoding="utf-8")):
            assert type(_decode_capture(request)) is dict


def test_batch_cmd_shapes_from_captures():
    assert isinstance(_decode_capture(_capture("b24pysdk.json", 2))["cmd"], list)
    assert isinstance(_decode_capture(_capture("b24pysdk.json", 3))["cmd"], dict)
    assert isinstance(_decode_capture(_capture("pybitrix24.json", 1))["cmd"], dict)
    assert isinstance(_decode_capture(_capture("b24jssdk.json", 1))["cmd"], list)


ATTACH_STRINGS = [
    "{'MESSAGE': 'hi'}",
    "{'LINK': {'NAME': 'x', 'LINK': 'https://example.com'}}",
    "{'DELIMITER': {'SIZE': 200, 'COLOR': '#c8c8c8'}}",
]
ATTACH_QUERY = [
    {"MESSAGE": "hi"},
    {"LINK": {"NAME": "x", "LINK": "https://example.com"}},
    {"DELIMITER": {"SIZE": "200", "COLOR": "#c8c8c8"}},
]
# batch sub-commands are parse_str'ed after the "?" (spec B 7.4)
SUBCOMMAND_CASES = [
    (
        "b24jssdk.json",
        1,
        0,
        {
            "USER_ID": "1",
            "MESSAGE": HELLO,
            "MESSAGE_OUT": "out msg",
            "TAG": "T1",
            "SUB_TAG": "S1",
            "ATTACH": ATTACH_QUERY,
        },
    ),
    (
        "b24pysdk.json",
        2,
        "0",
        {
            "USER_ID": "1",
            "MESSAGE": "m0",
            "ATTACH": {"BLOCKS": ATTACH_QUERY},
        },
    ),
    (
        "fast_bitrix24.json",
        1,
        "order0000000001",
        {
            "__order": "order0000000001",
            "USER_ID": "1",
            "MESSAGE": "b",
            "MESSAGE_OUT": "out msg",
            "TAG": "T1",
            "SUB_TAG": "S1",
            "ATTACH": ATTACH_QUERY,
        },
    ),
    ("pybitrix24.json", 1, "a", {"ATTACH": ATTACH_STRINGS, "MESSAGE": "hi", "USER_ID": "1"}),
]


@pytest.mark.parametrize(("file", "index", "key", "expected"), SUBCOMMAND_CASES)
def test_batch_subcommand_query(file, index, key, expected):
    command = json.loads(_capture(file, index)["body"])["cmd"][key]
    method, _, query = command.partition("?")
    assert method == "im.notify.personal.add"
    assert parse_php_query(query) == expected


# --- hostile input ------------------------------------------------------------------------------

HOSTILE = [
    b"a" + b"[" * 100_000 + b"=1",
    b"a" + b"[x]" * 10_000 + b"=1",
    b"a" + b"[]" * 10_000 + b"=1",
    b"&".join(b"v%d[]=x" % i for i in range(5000)),
    b"&".join(b"a[]=%d" % i for i in range(5000)),
    b"k" * 1_000_000 + b"=v",
    b"a[" + b"k" * 1_000_000 + b"]=v",
    bytes(range(256)) * 50,
    b"%" * 10_000,
    b"\xff\xfe\xfd=\xc0\xaf&\xed\xa0\x80[\xf4\x90]=1",
    b"=&=&[&]&[]=&%00=%00",
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_never_raises(data):
    assert type(parse_php_query(data)) is dict
    text = data.decode("latin-1")
    assert type(parse_php_query(text)) is dict
    assert type(assemble_php_pairs([(text, text)])) is dict
    assert type(decode_json_body(data)) is dict
    for content_type in (FORM, "application/json", "text/plain", None, "multipart/form-data"):
        decoded = decode_request(
            http_method="POST",
            query_string=data,
            content_type=content_type,
            body=data,
            form_pairs=[(text, text)],
        )
        assert type(decoded) is dict


def test_hostile_json_decodes_to_a_dict_or_is_refused_undecoded():
    for body in (
        b"[" * 50_000,
        b'{"a":' * 50_000,
        b'"' + b"\\ud800" * 10_000 + b'"',
        b"[" + b"1," * 90_000 + b"1]",
        "\ud800".encode("utf-8", "surrogatepass"),
    ):
        assert type(decode_json_body(body)) is dict
    too_many = (b"[" * 1_000_000, b"[" + b"[],"* 2_000_000 + b"[]]",
                b"[" + b"1," * 100_000 + b"1]")
    for body in too_many:
        with pytest.raises(DecodeLimitError, match="more than 100000 values"):
            decode_json_body(body)
    # Commas, brackets and escaped quotes inside strings are text, not values.
    text = ',[{\\"' * 40_000  # 120,000 separators in one string
    assert decode_json_body(b'{"MESSAGE": "' + text.encode() + b'", "USER_ID": 2}') == {
        "MESSAGE": text.replace('\\"', '"'), "USER_ID": 2}
    with pytest.raises(DecodeLimitError, match="more than 100000 values"):
        decode_json_body(b'{"a": "' + text.encode() + b'", "b": [' + b"1," * 100_000 + b"1]}")
    assert decode_json_body(None) == {}
    assert decode_json_body('{"a": "\ud800"}') == {}
    assert parse_php_query("a=\ud800") == {"a": "\ufffd\ufffd\ufffd"}


def test_many_vars_and_appends_stay_bounded():
    assert len(parse_php_query(HOSTILE[3])) == 1000
    assert parse_php_query(HOSTILE[4])["a"] == [str(i) for i in range(1000)]


def test_an_unclosed_string_of_escaped_quotes_is_counted_in_one_pass():
    """The value count's second look (strings removed) must not rescan the body from every
    quote: an unclosed string of 400,000 escaped quotes followed by commas took hours that way,
    holding the worker's GIL. Run in a child process so that a regression fails instead of
    hanging the suite; it needs well under a second."""
    import subprocess
    import sys

    script = ("from b24emu.rest.params import decode_json_body\n"
              "print(decode_json_body(b'\"' + b'\\\\\"' * 400_000 + b',' * 100_001))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "{}"  # not JSON (the string never closes): no parameters
