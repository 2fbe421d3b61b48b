"""ATTACH normalization (spec B 3): block rules, input shapes, COLOR, the size limit."""

from __future__ import annotations

import json
import math
import random
import re
import sys
from pathlib import Path

import pytest
from b24emu import php
from b24emu.methods import attach as att
from b24emu.methods.attach import AttachError, AttachOversize

CAPTURES = Path(__file__).parent / "data" / "wire-captures"
LIMIT = att.DEFAULT_MAX_BYTES
ATTACH_ID = 7
PICKED = "#0a0b0c"  # what the deterministic pick_color returns for an invalid COLOR


def normalize(value):
    """normalize_attach with a fixed ID and a deterministic colour picker."""
    return att.normalize_attach(value, attach_id=ATTACH_ID, pick_color=lambda: PICKED)


def blocks_of(block):
    """The BLOCKS of a short-form attach holding one block, or None when nothing survived."""
    attach = normalize([block])
    return None if attach is None else attach["BLOCKS"]


def check(value, max_bytes=LIMIT):
    """check_attach as the im.notify* handlers call it."""
    return att.check_attach(value, attach_id=ATTACH_ID, max_bytes=max_bytes, pick_color=None)


# --- every block type: valid examples with their exact normalized form --------------------

VALID_BLOCKS = [
    # USER: NAME required (not trimmed, newlines to spaces); one target; AVATAR_TYPE
    ("user-id", {"USER": {"NAME": "Ann", "USER_ID": "5"}},
     [{"USER": [{"NAME": "Ann", "AVATAR_TYPE": "USER", "USER_ID": 5}]}]),
    ("user-name-only", {"USER": {"NAME": " A\r\nB "}},
     [{"USER": [{"NAME": " A B ", "AVATAR_TYPE": "USER"}]}]),
    ("user-chat", {"USER": {"NAME": "c", "CHAT_ID": 9}},
     [{"USER": [{"NAME": "c", "AVATAR_TYPE": "CHAT", "CHAT_ID": 9}]}]),
    ("user-bot", {"USER": {"NAME": "b", "BOT_ID": "3", "AVATAR_TYPE": "USER"}},
     [{"USER": [{"NAME": "b", "AVATAR_TYPE": "USER", "BOT_ID": 3}]}]),
    ("user-network", {"USER": {"NAME": "n", "NETWORK_ID": "<12x", "USER_ID": 5}},
     [{"USER": [{"NAME": "n", "AVATAR_TYPE": "USER", "NETWORK_ID": "&lt;12"}]}]),
    ("user-link-avatar",
     {"USER": {"NAME": "A", "LINK": "/u/1", "AVATAR": "https://a/x.png", "AVATAR_TYPE": "BOT"}},
     [{"USER": [{"NAME": "A", "AVATAR_TYPE": "BOT", "LINK": "/u/1", "AVATAR": "https://a/x.png"}]}]),
    ("user-bad-link-avatar-type",
     {"USER": {"NAME": "A", "LINK": "ftp://x", "AVATAR": "x.png", "AVATAR_TYPE": "ROBOT"}},
     [{"USER": [{"NAME": "A", "AVATAR_TYPE": "USER"}]}]),
    ("user-list-one-block-each", {"USER": [{"NAME": "A"}, {"USER_ID": 1}, {"NAME": "B"}]},
     [{"USER": [{"NAME": "A", "AVATAR_TYPE": "USER"}]},
      {"USER": [{"NAME": "B", "AVATAR_TYPE": "USER"}]}]),
    # LINK: LINK matching #^(?:/|https?://)#, or an id with NAME
    ("link", {"LINK": {"NAME": "x", "LINK": "https://example.com"}},
     [{"LINK": [{"NAME": "x", "LINK": "https://example.com"}]}]),
    ("link-relative", {"LINK": {"LINK": "/crm/"}}, [{"LINK": [{"LINK": "/crm/"}]}]),
    ("link-html-wins",
     {"LINK": {"LINK": "http://a", "DESC": "d\nx", "HTML": "<b>h</b>", "PREVIEW": "/p.png"}},
     [{"LINK": [{"LINK": "http://a", "DESC": "d\nx", "HTML": "<b>h</b>"}]}]),
    ("link-preview",
     {"LINK": {"LINK": "/a", "PREVIEW": "/p.png", "WIDTH": "100", "HEIGHT": 0, "DESC": 5}},
     [{"LINK": [{"LINK": "/a", "DESC": 5, "PREVIEW": "/p.png", "WIDTH": 100}]}]),
    ("link-user-id", {"LINK": {"USER_ID": "3", "NAME": " Bo\nb "}},
     [{"LINK": [{"USER_ID": 3, "NAME": "Bo b"}]}]),
    ("link-chat-id", {"LINK": {"CHAT_ID": 4, "NAME": "c"}},
     [{"LINK": [{"CHAT_ID": 4, "NAME": "c"}]}]),
    ("link-network-keeps-any-link", {"LINK": {"NETWORK_ID": "N7", "NAME": "n", "LINK": "ftp://x"}},
     [{"LINK": [{"NETWORK_ID": "N7", "NAME": "n", "LINK": "ftp://x"}]}]),
    ("link-list", {"LINK": [{"LINK": "/a"}, {"LINK": "ftp://b"}, {"LINK": "/c"}]},
     [{"LINK": [{"LINK": "/a"}]}, {"LINK": [{"LINK": "/c"}]}]),
    ("link-int-keyed-list", {"LINK": {0: {"LINK": "/a"}, 1: {"LINK": "/b"}}},
     [{"LINK": [{"LINK": "/a"}]}, {"LINK": [{"LINK": "/b"}]}]),
    # RICH_LINK (undocumented)
    ("rich-link",
     {"RICH_LINK": {"LINK": "https://a", "NAME": " T ", "DESC": "a\nb", "HTML": " h ",
                    "PREVIEW": "/i.png", "PREVIEW_SIZE": {"WIDTH": 10}}},
     [{"RICH_LINK": [{"NAME": "T", "LINK": "https://a", "DESC": "a b", "HTML": "h",
                      "PREVIEW": "/i.png", "PREVIEW_SIZE": {"HEIGHT": 0, "WIDTH": 10}}]}]),
    ("rich-link-extra-image", {"RICH_LINK": {"LINK": "/a", "EXTRA_IMAGE": "/e.png"}},
     [{"RICH_LINK": [{"LINK": "/a", "EXTRA_IMAGE": "/e.png"}]}]),
    # MESSAGE: trimmed, #BR# -> [BR], newlines kept
    ("message", {"MESSAGE": " a#BR#b\nc "}, [{"MESSAGE": "a[BR]b\nc"}]),
    ("message-zero", {"MESSAGE": "0"}, [{"MESSAGE": "0"}]),
    ("message-int", {"MESSAGE": 0}, [{"MESSAGE": "0"}]),
    ("message-float", {"MESSAGE": 1.5}, [{"MESSAGE": "1.5"}]),
    ("message-true", {"MESSAGE": True}, [{"MESSAGE": "1"}]),
    ("message-text", {"MESSAGE": {"TEXT": "t", "AS_DESCRIPTION": "N"}}, [{"MESSAGE": "t"}]),
    # GRID: one block, DISPLAY mapped, items without NAME and VALUE skipped unless LINE
    ("grid", {"GRID": [{"NAME": "n", "VALUE": "v"}]},
     [{"GRID": [{"DISPLAY": "BLOCK", "NAME": "n", "VALUE": "v"}]}]),
    ("grid-line-empty", {"GRID": [{"DISPLAY": "LINE"}]},
     [{"GRID": [{"DISPLAY": "LINE", "NAME": "", "VALUE": ""}]}]),
    ("grid-all-fields",
     {"GRID": [{"DISPLAY": "ROW", "NAME": "a\nb", "VALUE": " x#BR#y\nz ", "COLOR": "#AbC",
                "WIDTH": "250", "HEIGHT": -1, "USER_ID": "7", "CHAT_ID": 0,
                "LINK": "https://l", "COLOR_TOKEN": "alert"}]},
     [{"GRID": [{"DISPLAY": "ROW", "NAME": "a b", "VALUE": "x[BR]y\nz", "COLOR_TOKEN": "alert",
                 "COLOR": "#AbC", "WIDTH": 250, "USER_ID": 7, "LINK": "https://l"}]}]),
    ("grid-bad-extras",
     {"GRID": [{"NAME": "n", "COLOR": "red", "COLOR_TOKEN": "danger", "LINK": "x", "CHAT_ID": 2}]},
     [{"GRID": [{"DISPLAY": "BLOCK", "NAME": "n", "VALUE": "", "CHAT_ID": 2}]}]),
    ("grid-skips-blank-items", {"GRID": [{"NAME": " "}, "x", {"VALUE": "v"}]},
     [{"GRID": [{"DISPLAY": "BLOCK", "NAME": "", "VALUE": "v"}]}]),
    # IMAGE: one object or a list; LINK required; NAME (trimmed only) comes first
    ("image", {"IMAGE": {"LINK": "https://i/1.png"}}, [{"IMAGE": [{"LINK": "https://i/1.png"}]}]),
    ("image-fields",
     {"IMAGE": [{"NAME": " a\nb ", "LINK": "/1.png", "WIDTH": "10", "HEIGHT": "x",
                 "PREVIEW": "http://p"}, {"LINK": "ftp://2"}]},
     [{"IMAGE": [{"NAME": "a\nb", "LINK": "/1.png", "WIDTH": 10, "PREVIEW": "http://p"}]}]),
    # FILE: one object or a list; LINK required; NAME on one line; SIZE > 0
    ("file", {"FILE": {"LINK": "https://f/a.pdf", "NAME": " a\nb ", "SIZE": "1024"}},
     [{"FILE": [{"LINK": "https://f/a.pdf", "NAME": "a b", "SIZE": 1024}]}]),
    ("file-drops-bad-extras", {"FILE": [{"LINK": "/f", "NAME": "  ", "SIZE": 0}]},
     [{"FILE": [{"LINK": "/f"}]}]),
    # DELIMITER: any non-null value; SIZE defaults to 200; COLOR only if hex
    ("delimiter-empty", {"DELIMITER": {}}, [{"DELIMITER": {"SIZE": 200}}]),
    ("delimiter-full", {"DELIMITER": {"SIZE": "300", "COLOR": "#c8c8c8"}},
     [{"DELIMITER": {"SIZE": 300, "COLOR": "#c8c8c8"}}]),
    ("delimiter-bad", {"DELIMITER": {"SIZE": -5, "COLOR": "#c8c8c8\n"}},
     [{"DELIMITER": {"SIZE": 200}}]),
    ("delimiter-scalar", {"DELIMITER": "yes"}, [{"DELIMITER": {"SIZE": 200}}]),
    ("delimiter-false", {"DELIMITER": False}, [{"DELIMITER": {"SIZE": 200}}]),
    # the first recognised key decides (USER, LINK, RICH_LINK, MESSAGE, GRID, IMAGE, FILE, ...)
    ("link-before-message", {"MESSAGE": "m", "LINK": {"LINK": "/x"}}, [{"LINK": [{"LINK": "/x"}]}]),
    ("null-is-unset", {"IMAGE": None, "FILE": {"LINK": "/f"}}, [{"FILE": [{"LINK": "/f"}]}]),
    ("unknown-keys-ignored", {"FOO": 1, "DELIMITER": {}}, [{"DELIMITER": {"SIZE": 200}}]),
]  # fmt: skip

INVALID_BLOCKS = [
    ("user-no-name", {"USER": {"USER_ID": 1}}),
    ("user-blank-name", {"USER": {"NAME": " \n "}}),
    ("user-string", {"USER": "Ann"}),
    ("user-array-name", {"USER": {"NAME": ["x"]}}),
    ("user-empty-list", {"USER": []}),
    ("link-ftp", {"LINK": {"LINK": "ftp://x"}}),
    ("link-no-scheme", {"LINK": {"LINK": "www.x.com"}}),
    ("link-upper-scheme", {"LINK": {"LINK": "HTTPS://X"}}),
    ("link-name-only", {"LINK": {"NAME": "x"}}),
    ("link-id-without-name", {"LINK": {"USER_ID": 3}}),
    ("link-string", {"LINK": "https://x"}),
    ("link-non-list-int-keys", {"LINK": {1: {"LINK": "/a"}}}),
    ("rich-link-bad", {"RICH_LINK": {"LINK": "x"}}),
    ("message-empty", {"MESSAGE": ""}),
    ("message-blank", {"MESSAGE": " \t\n"}),
    ("message-false", {"MESSAGE": False}),
    ("message-array", {"MESSAGE": ["x"]}),
    ("message-no-text", {"MESSAGE": {"AS_DESCRIPTION": "Y"}}),
    ("message-empty-text", {"MESSAGE": {"TEXT": " "}}),
    ("grid-empty", {"GRID": []}),
    ("grid-blank", {"GRID": [{"NAME": "", "VALUE": " "}, {"DISPLAY": "BLOCK"}]}),
    ("grid-string", {"GRID": "text"}),
    ("grid-one-object", {"GRID": {"NAME": "n", "VALUE": "v"}}),
    ("grid-lists", {"GRID": [["n", "v"]]}),
    ("image-no-link", {"IMAGE": {"NAME": "x"}}),
    ("image-ftp", {"IMAGE": [{"LINK": "ftp://x"}]}),
    ("image-string", {"IMAGE": "https://i.png"}),
    ("image-empty", {"IMAGE": []}),
    ("file-no-link", {"FILE": {"NAME": "a"}}),
    ("file-scheme", {"FILE": [{"LINK": "file:///etc/passwd"}]}),
    ("delimiter-null", {"DELIMITER": None}),
    ("first-key-decides", {"USER": {"USER_ID": 1}, "MESSAGE": "m"}),
    ("no-known-key", {"FOO": 1}),
    ("lowercase-key", {"message": "x"}),
    ("string-element", "hello"),
    ("list-element", [{"MESSAGE": "x"}]),
    ("number-element", 5),
]


@pytest.mark.parametrize(
    ("block", "expected"), [c[1:] for c in VALID_BLOCKS], ids=[c[0] for c in VALID_BLOCKS]
)
def test_valid_block_normalizes_exactly(block, expected):
    assert blocks_of(block) == expected


@pytest.mark.parametrize(
    "block", [c[1] for c in INVALID_BLOCKS], ids=[c[0] for c in INVALID_BLOCKS]
)
def test_invalid_block_is_skipped(block):
    assert blocks_of(block) is None
    attach = normalize([block, {"DELIMITER": {}}])
    assert attach["BLOCKS"] == [{"DELIMITER": {"SIZE": 200}}]


@pytest.mark.parametrize(
    ("display", "expected"),
    [("BLOCK", "BLOCK"), ("LINE", "LINE"), ("CARD", "LINE"), ("ROW", "ROW"), ("COLUMN", "ROW"),
     ("TABLE", "TABLE"), ("line", "BLOCK"), ("FOO", "BLOCK"), (None, "BLOCK"), (1, "BLOCK"),
     (True, "ROW")],
)  # fmt: skip
def test_grid_display_mapping(display, expected):
    assert blocks_of({"GRID": [{"DISPLAY": display, "NAME": "n"}]})[0]["GRID"][0]["DISPLAY"] == (
        expected
    )


# --- shapes: full form, short form, strings, PHP-form-decoded arrays ----------------------

CAPTURE_ATTACH = {
    "ID": ATTACH_ID,
    "BLOCKS": [
        {"MESSAGE": "hi"},
        {"LINK": [{"NAME": "x", "LINK": "https://example.com"}]},
        {"DELIMITER": {"SIZE": 200, "COLOR": "#c8c8c8"}},
    ],
    "DESCRIPTION": "",
}
CAPTURE_JSON = (
    '{"ID":7,"BLOCKS":[{"MESSAGE":"hi"},{"LINK":[{"NAME":"x","LINK":"https:\\/\\/example.com"}]},'
    '{"DELIMITER":{"SIZE":200,"COLOR":"#c8c8c8"}}],"DESCRIPTION":""}'
)
SHORT = [
    {"MESSAGE": "hi"},
    {"LINK": {"NAME": "x", "LINK": "https://example.com"}},
    {"DELIMITER": {"SIZE": 200, "COLOR": "#c8c8c8"}},
]
FORM = [  # what ATTACH[0][MESSAGE]=hi&... decodes to: every value a string
    {"MESSAGE": "hi"},
    {"LINK": {"NAME": "x", "LINK": "https://example.com"}},
    {"DELIMITER": {"SIZE": "200", "COLOR": "#c8c8c8"}},
]


def _capture_body(library: str, index: int) -> dict:
    """The JSON body of one recorded request."""
    requests = json.loads((CAPTURES / f"{library}.json").read_text())
    return json.loads(requests[index]["body"])


def test_wire_capture_full_form_normalizes_exactly():
    attach = normalize(_capture_body("b24pysdk", 0)["ATTACH"])
    assert attach == CAPTURE_ATTACH
    assert list(attach) == ["ID", "BLOCKS", "DESCRIPTION"]
    assert php.json_dumps(attach) == CAPTURE_JSON
    assert att.attach_json_length(attach) == len(CAPTURE_JSON) == 153


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"BLOCKS": SHORT}, id="full-form"),
        pytest.param(SHORT, id="short-form"),
        pytest.param(_capture_body("b24pysdk", 1)["ATTACH"], id="short-form-capture"),
        pytest.param(json.dumps({"BLOCKS": SHORT}), id="full-form-json-string"),
        pytest.param(json.dumps(SHORT), id="short-form-json-string"),
        pytest.param(json.dumps(SHORT, separators=(",", ":")), id="compact-json-string"),
        pytest.param(
            "{BLOCKS: [{MESSAGE: 'hi'}, {LINK: {NAME: 'x', LINK: 'https://example.com'}},"
            " {DELIMITER: {SIZE: 200, COLOR: '#c8c8c8'}}]}",
            id="js-object-string",
        ),
        pytest.param({"BLOCKS": FORM}, id="form-full"),
        pytest.param(FORM, id="form-short"),
        pytest.param({"BLOCKS": dict(enumerate(FORM))}, id="form-int-keys"),
        pytest.param({4: FORM[0], 9: FORM[1], 12: FORM[2]}, id="form-sparse-int-keys"),
        pytest.param({"BLOCKS": FORM, "ID": 99, "DESCRIPTION": ""}, id="input-id-ignored"),
    ],
)
def test_every_shape_gives_the_same_attach(value):
    assert normalize(value) == CAPTURE_ATTACH


def test_int_keyed_blocks_keep_their_order():
    attach = normalize({2: {"MESSAGE": "b"}, 0: {"MESSAGE": "a"}})
    assert attach["BLOCKS"] == [{"MESSAGE": "b"}, {"MESSAGE": "a"}]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("abc", id="string-not-array"),
        pytest.param({"MESSAGE": "x"}, id="bare-block"),
        pytest.param({"ID": 1, "COLOR": "#fff"}, id="no-blocks"),
        pytest.param([{"BLOCKS": [{"MESSAGE": "x"}]}], id="wrapped-full-form"),
        pytest.param([{"LINK": {"LINK": "ftp://x"}}], id="ftp-link"),
        pytest.param([{"FOO": 1}], id="unknown-block"),
        pytest.param('[{"FOO":1}]', id="unknown-block-string"),
        pytest.param('{"MESSAGE":"x"}', id="bare-block-string"),
        pytest.param(True, id="true"),
        pytest.param(5, id="number"),
        pytest.param({"BLOCKS": "x"}, id="blocks-string"),
        pytest.param({"BLOCKS": {"MESSAGE": "x"}}, id="blocks-one-object"),
        pytest.param({"BLOCKS": None, "MESSAGE": "x"}, id="blocks-null"),
        pytest.param({}, id="empty-object-string-values"),
        pytest.param(
            ["{'MESSAGE': 'hi'}", "{'DELIMITER': {'SIZE': 200}}"], id="pybitrix24-batch-repr"
        ),
    ],
)
def test_attach_error_examples(value):
    assert normalize(value) is None
    if value:
        with pytest.raises(AttachError):
            check(value)


@pytest.mark.parametrize("value", [[{"DELIMITER": {}}], '[{"DELIMITER":{}}]'])
def test_lone_delimiter_is_valid(value):
    assert normalize(value) == {
        "ID": ATTACH_ID,
        "BLOCKS": [{"DELIMITER": {"SIZE": 200}}],
        "DESCRIPTION": "",
    }


@pytest.mark.parametrize("value", ["", "0", [], {}, None, 0, False, 0.0])
def test_falsy_attach_means_no_attach(value):
    """The caller's rule (im_rest.php: !empty(ATTACH)): no attach and no error."""
    assert check(value) is None


# --- strings: CUtil::JsObjectToPhp($s, true) -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"MESSAGE":"hi"}]', [{"MESSAGE": "hi"}]),
        ('{"a":1,"b":true,"c":null,"d":1.5}', {"a": "1", "b": "true", "c": "null", "d": "1.5"}),
        ("{a: 'x', 'b': \"y\"}", {"a": "x", "b": "y"}),
        ('{"a":" x [y] z "}', {"a": "x[y]z"}),
        ("[1,]", ["1"]),
        ("[,1]", [None, "1"]),
        ("[]", []),
        ("{}", {"": None}),
        ('{"a"}', {"a": None}),
        ('{"0":"a","1":"b"}', ["a", "b"]),
        ('{"1":"a"}', {1: "a"}),
        ('{"a:b":1}', {"": 'b":1'}),
        ("[1] trailing", ["1"]),
        ('"\\u041f\\u0440\\u0438"', "При"),
        ('"\\ud83d\\ude00"', "??"),
        ('"\\ufeffx"', "x"),
        ('"a\\/b\\n"', "a\\/b\\n"),
        ('[{"a":"x}y"}]', False),
        ('[{"a":1}', False),
        ("", None),
        ("  ", None),
        ("abc", "abc"),
    ],
)
def test_js_object_to_php(text, expected):
    assert att.js_object_to_php(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"MESSAGE":"say \\"hi\\"\\nbye"}]', 'say "hi"\nbye'),
        ('[{"MESSAGE":"a, b: c"}]', "a, b: c"),
        ("[{MESSAGE: 'single'}]", "single"),
        ('[{"MESSAGE":"\\u00fc\\u00e9"}]', "üé"),
        ('[{"MESSAGE":"  x  "}]', "x"),
    ],
)
def test_string_attach_messages(text, message):
    assert normalize(text)["BLOCKS"] == [{"MESSAGE": message}]


def test_whitespace_rule_matches_the_php_regex():
    """_JS_SPACE is '/[\\s]*([{}\\[\\]\\"])[\\s]*/' -> '\\1' without a template per match."""
    php_regex = re.compile(r'[ \t\n\x0b\x0c\r]*([{}\[\]"])[ \t\n\x0b\x0c\r]*')
    rng = random.Random(1)
    for _ in range(3000):
        text = "".join(rng.choice(' \t\n\x0c{}[]"a,:') for _ in range(rng.randrange(12)))
        assert att._JS_SPACE.sub("", text) == php_regex.sub(r"\1", text), repr(text)


def test_escaped_slash_in_string_is_not_unescaped():
    """PHP's json_encode writes https:\\/\\/..., which the portal's parser keeps as it is."""
    assert normalize('[{"LINK":{"LINK":"https:\\/\\/x"}}]') is None
    assert normalize('[{"LINK":{"LINK":"https://x"}}]')["BLOCKS"] == [
        {"LINK": [{"LINK": "https://x"}]}
    ]


def test_service_symbols_are_unescaped_in_arrays_too():
    attach = normalize([{"MESSAGE": 'tab\\tq\\"x\\" back\\\\slash'}, {"MESSAGE": "a\\\\nb"}])
    # str_replace runs \n, \t, \", \\ in turn: "a\\\\nb" loses its "\n" before "\\\\" is seen
    assert attach["BLOCKS"] == [{"MESSAGE": 'tab\tq"x" back\\slash'}, {"MESSAGE": "a\\\nb"}]


# --- COLOR, COLOR_TOKEN, DESCRIPTION, ID ----------------------------------------------------


@pytest.mark.parametrize(
    ("color", "expected"),
    [("CHAT", None), (None, None), ("TRANSPARENT", "transparent"), (True, "transparent"),
     ("#fff", "#fff"), ("#A1b2C3", "#A1b2C3"), ("#ffff", PICKED), ("red", PICKED),
     ("transparent", PICKED), ("chat", PICKED), ("", PICKED), ("0", PICKED), (123, PICKED),
     ("#fff\n", PICKED), (["#fff"], PICKED)],
)  # fmt: skip
def test_full_form_color(color, expected):
    attach = normalize({"BLOCKS": [{"DELIMITER": {}}], "COLOR": color})
    assert attach.get("COLOR") == expected
    assert ("COLOR" in attach) == (expected is not None)


def test_absent_color_and_short_form_store_no_color():
    assert "COLOR" not in normalize({"BLOCKS": [{"DELIMITER": {}}]})
    assert "COLOR" not in normalize([{"DELIMITER": {}}, {"COLOR": "#fff"}])


def test_default_pick_color_is_from_the_palette():
    attach = att.normalize_attach({"BLOCKS": [{"DELIMITER": {}}], "COLOR": "red"}, attach_id=1)
    assert attach["COLOR"] in att.PALETTE


@pytest.mark.parametrize(
    ("token", "kept"), [("primary", True), ("base", True), ("PRIMARY", False), (5, False)]
)
def test_color_token(token, kept):
    attach = normalize({"BLOCKS": [{"DELIMITER": {}}], "COLOR_TOKEN": token, "COLOR": "#fff"})
    assert list(attach) == ["ID", "BLOCKS", "DESCRIPTION", *(["COLOR_TOKEN"] if kept else []),
                            "COLOR"]  # fmt: skip
    assert attach.get("COLOR_TOKEN") == (token if kept else None)


@pytest.mark.parametrize(
    ("description", "expected"),
    [("a\nb", "a b"), ("  x  ", "x"), (42, "42"), (["x"], ""),
     ("<b>bold</b> <I>it</I> <s>s</s>", "[b]bold[/b] [I]it[/I] [s]s[/s]"),
     ("<br/>x<BR >", "[br]x[br]"),
     ('<a href="https://x">l</a> <a href=/y>m</a>', "[url=https://x]l[/url] [url=/y]m[/url]"),
     ('<font color="#f00">r</font><span color=\'#00ff00\'>g</span>',
      "[color=#f00]r[/color][color=#00ff00]g[/color]"),
     ('<font size="3">big</font>', "[size=3]big[/size]"),
     ("<div class='a'><div>x</div></div><span>y</span><font face=z>w</font>", "xyw"),
     ("&nbsp;x<hr>#BR#", "x------[BR][BR]"),
     ("</div>" + "<div>" * 2000, "</div>" + "<div>" * 2000)],
)  # fmt: skip
def test_description_is_one_line_bbcode(description, expected):
    attach = normalize({"BLOCKS": [{"DELIMITER": {}}], "DESCRIPTION": description})
    assert attach["DESCRIPTION"] == expected


def test_message_as_description():
    attach = normalize(
        {
            "BLOCKS": [{"MESSAGE": {"TEXT": "a#BR#b\nc", "AS_DESCRIPTION": "Y"}}, {"MESSAGE": "z"}],
            "DESCRIPTION": "overwritten",
        }
    )
    assert attach["DESCRIPTION"] == "a[BR]b\nc"
    assert attach["BLOCKS"] == [{"MESSAGE": "a[BR]b\nc"}, {"MESSAGE": "z"}]
    strict = normalize([{"MESSAGE": {"TEXT": "t", "AS_DESCRIPTION": True}}])
    assert strict["DESCRIPTION"] == ""


def test_id_is_the_given_one():
    attach = att.normalize_attach({"ID": 99, "BLOCKS": [{"MESSAGE": "m"}]}, attach_id=1234)
    assert attach["ID"] == 1234


# --- the size limit -----------------------------------------------------------------------


def _message_attach(text: str) -> dict:
    """A full-form attach holding one MESSAGE block."""
    return normalize({"BLOCKS": [{"MESSAGE": text}]})


def _fill_to(limit: int, unit: str = "", count: int = 0) -> str:
    """A message of ``count`` units plus x's whose attach JSON is exactly ``limit`` long."""
    base = att.attach_json_length(_message_attach(unit * count + "x"))
    return unit * count + "x" * (limit - base + 1)


def test_exact_size_boundary():
    text = _fill_to(LIMIT)
    assert att.attach_json_length(_message_attach(text)) == LIMIT
    assert check({"BLOCKS": [{"MESSAGE": text}]}) == _message_attach(text)
    assert att.attach_json_length(_message_attach(text + "x")) == LIMIT + 1
    with pytest.raises(AttachOversize) as raised:
        check({"BLOCKS": [{"MESSAGE": text + "x"}]})
    assert raised.value.code == "ATTACH_OVERSIZE"
    assert str(raised.value) == "You have exceeded the maximum allowable size of attach"


def test_boundary_with_non_ascii_and_slashes():
    text = _fill_to(LIMIT, "é", 4000)  # 4000 x 6 bytes
    assert len(text) < LIMIT - 15000
    assert check([{"MESSAGE": text}]) is not None
    with pytest.raises(AttachOversize):  # one "/" instead of one "x": one byte more
        check([{"MESSAGE": text[:-1] + "/"}])


@pytest.mark.parametrize(
    ("char", "extra"), [("é", 5), ("я", 5), ("😀", 11), ("/", 1), ("<", 5), ("&", 5), ("'", 5),
                        ('"', 5), ("\\", 1), ("\t", 1), ("\x01", 5), ("x", 0)],
)  # fmt: skip
def test_json_bytes_per_character(char, extra):
    plain = att.attach_json_length(_message_attach("axb"))
    assert att.attach_json_length(_message_attach("a" + char + "b")) == plain + extra


def test_limit_is_the_callers():
    attach = check([{"MESSAGE": "x" * 50_000}], max_bytes=60_000)
    assert attach["BLOCKS"] == [{"MESSAGE": "x" * 50_000}]
    with pytest.raises(AttachOversize):
        check([{"MESSAGE": "x" * 50_000}])


def test_dropped_fields_do_not_count():
    junk = {"BLOCKS": [{"MESSAGE": "m", "JUNK": "x" * 100_000}], "JUNK": "y" * 100_000}
    assert check(junk) == _message_attach("m")


def test_error_classes_carry_the_bitrix_error():
    with pytest.raises(AttachError) as raised:
        check("abc")
    assert (raised.value.code, str(raised.value)) == ("ATTACH_ERROR", "Incorrect attach params")


# --- hostile input: never raises ----------------------------------------------------------


def _nested(depth: int, leaf=None):
    """A list nested ``depth`` levels deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_array_is_none():
    assert normalize(_nested(5000)) is None
    assert normalize([{"MESSAGE": _nested(5000, "x")}]) is None


def test_deep_kept_value_is_oversize():
    """A 512-deep JSON body decodes on a portal, but its normalized attach is one level deeper
    (LINK gets a list) and json_encode fails beyond 512: ATTACH_OVERSIZE."""
    body_depth = 4 + 508  # {ATTACH: [{LINK: {DESC: ...}}]}
    attach = normalize([{"LINK": {"LINK": "/x", "DESC": _nested(body_depth - 4)}}])
    assert attach is not None
    assert att.attach_json_length(attach) == sys.maxsize
    with pytest.raises(AttachOversize):
        check([{"LINK": {"LINK": "/x", "DESC": _nested(508)}}])
    shallow = check([{"LINK": {"LINK": "/x", "DESC": _nested(100, 1)}}])
    assert shallow["BLOCKS"][0]["LINK"][0]["DESC"] == _nested(100, 1)


def test_unencodable_kept_value_is_oversize():
    with pytest.raises(AttachOversize):
        check([{"LINK": {"LINK": "/x", "DESC": math.nan}}])


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 2000 + "]" * 2000,
        "{" * 50_000 + "}" * 50_000,
        '{"a":' * 1000 + "1" + "}" * 1000,
        "[{[1]:2}]",
        '"' * 10_000,
        "\\u" * 10_000,
        ",".join(["[1]"] * 20_000),
    ],
)
def test_hostile_strings_are_none(text):
    assert normalize(text) is None


def test_string_decoding_caps():
    """Our caps (PHP has none): 64 levels, and each character rescanned at most 16 times."""
    assert att.js_object_to_php("[" * 64 + "]" * 64) == _nested(63, [])
    assert att.js_object_to_php("[" * 66 + "1" + "]" * 66) is None
    assert att.js_object_to_php("[" * 40 + ",".join(["1"] * 20_000) + "]" * 40) is None
    deep_desc = "[" * 10 + '"d"' + "]" * 10
    attach = normalize('[{"LINK":{"LINK":"/x","DESC":' + deep_desc + "}}]")
    assert attach["BLOCKS"] == [{"LINK": [{"LINK": "/x", "DESC": _nested(10, "d")}]}]


def test_full_form_string_reads_color_and_as_description():
    attach = normalize(
        '{"BLOCKS":[{"MESSAGE":{"TEXT":"x","AS_DESCRIPTION":"Y"}}],"COLOR":"#fff","ID":"5"}'
    )
    assert attach == {
        "ID": ATTACH_ID,
        "BLOCKS": [{"MESSAGE": "x"}],
        "DESCRIPTION": "x",
        "COLOR": "#fff",
    }


def test_huge_valid_string_is_normalized_then_oversize():
    text = json.dumps([{"MESSAGE": "x" * 1_000_000}])
    assert normalize(text)["BLOCKS"] == [{"MESSAGE": "x" * 1_000_000}]
    with pytest.raises(AttachOversize):
        check(text)


@pytest.mark.parametrize(
    "value",
    [
        [{"MESSAGE": object()}],
        [{"USER": {"NAME": {"a": 1}}}],
        [{"GRID": [{"NAME": ["x"], "VALUE": {"y": 1}}]}],
        [{"IMAGE": {"LINK": ["/x"]}}],
        [{"DELIMITER": {"SIZE": [1, 2], "COLOR": ["#fff"]}}],
        {"BLOCKS": [{"MESSAGE": "m"}], "DESCRIPTION": {"x": 1}, "COLOR": {"c": 1}},
        [{("tuple", "key"): 1}],
    ],
)
def test_odd_types_never_raise(value):
    attach = normalize(value)
    assert attach is None or attach["BLOCKS"]
