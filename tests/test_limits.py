"""Every size and depth limit, at its boundary: what passes, and what the client sees past it.

PHP's silent truncations (max_input_vars, max_input_nesting_level, the message cut) are
reproduced silently; refusals are Bitrix-shaped errors with their status.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from b24emu import create_app
from b24emu.methods import attach as attach_rules
from b24emu.methods.batch import BATCH_MAX_LENGTH
from b24emu.methods.im_notify import MESSAGE_CUT_SUFFIX, MESSAGE_LIMIT
from b24emu.rest import params

from tests.conftest import T0

ADD = "/rest/1/devtoken/im.notify.personal.add"
FORM = "application/x-www-form-urlencoded"
BODY_LIMIT = 1000


@pytest.fixture
def app(settings, clock):
    """No request-rate limit: some tests send many requests or a 50-command batch."""
    return create_app(replace(settings, rate_limit="off"), clock=clock)


@pytest.fixture
def small(settings, clock):
    """A client of an emulator with a 1000-byte body limit (B24EMU_MAX_BODY_BYTES=1000)."""
    app = create_app(replace(settings, rate_limit="off", max_body_bytes=BODY_LIMIT), clock=clock)
    return app.test_client()


def stored(settings, notification_id: int):
    with sqlite3.connect(settings.db) as conn:
        return conn.execute("SELECT recipient_id, message, attach FROM notifications WHERE id = ?",
                            [notification_id]).fetchone()


def padded_form(size: int) -> bytes:
    """A valid add whose urlencoded body is exactly `size` bytes."""
    head = b"USER_ID=2&MESSAGE=hi&PAD="
    return head + b"x" * (size - len(head))


# --- request body size ---------------------------------------------------------------------

def test_body_at_the_limit_passes_one_byte_more_is_413(small):
    ok = small.post(ADD, data=padded_form(BODY_LIMIT), content_type=FORM)
    assert ok.status_code == 200
    over = small.post(ADD, data=padded_form(BODY_LIMIT + 1), content_type=FORM)
    assert over.status_code == 413
    assert over.get_json() == {
        "error": "REQUEST_ENTITY_TOO_LARGE",
        "error_description": f"Request body is larger than {BODY_LIMIT} bytes",
    }


def test_body_limit_in_every_encoding(small):
    big_json = json.dumps({"USER_ID": 2, "MESSAGE": "x" * BODY_LIMIT})
    assert small.post(ADD, data=big_json, content_type="application/json").status_code == 413
    multipart = small.post(ADD, data={"USER_ID": "2", "MESSAGE": "x" * BODY_LIMIT})
    assert multipart.status_code == 413
    xml = small.post(ADD + ".xml", data=padded_form(BODY_LIMIT + 1), content_type=FORM)
    assert xml.status_code == 413
    assert xml.get_data().startswith(
        b'<response><error>REQUEST_ENTITY_TOO_LARGE</error>')


def test_chunked_body_without_length_is_limited_too(small):
    # a chunked upload has no Content-Length; the limit applies to the bytes actually read
    over = small.post(ADD, data=padded_form(BODY_LIMIT + 500), content_type=FORM,
                       environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True,
                                          "HTTP_TRANSFER_ENCODING": "chunked"})
    assert (over.status_code, over.get_json()["error"]) == (413, "REQUEST_ENTITY_TOO_LARGE")
    ok = small.post(ADD, data=padded_form(BODY_LIMIT), content_type=FORM,
                     environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True,
                                        "HTTP_TRANSFER_ENCODING": "chunked"})
    assert ok.status_code == 200
    multipart = (b'--x\r\nContent-Disposition: form-data; name="USER_ID"\r\n\r\n2\r\n'
                 b'--x\r\nContent-Disposition: form-data; name="MESSAGE"\r\n\r\nchunked\r\n'
                 b"--x--\r\n")
    ok = small.post(ADD, data=multipart, content_type="multipart/form-data; boundary=x",
                    environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True,
                                       "HTTP_TRANSFER_ENCODING": "chunked"})
    assert ok.status_code == 200


def test_body_limit_is_a_setting(settings, clock):
    app = create_app(replace(settings, rate_limit="off", max_body_bytes=5000), clock=clock)
    reply = app.test_client().post(ADD, data=padded_form(4000), content_type=FORM)
    assert reply.status_code == 200


# --- max_input_nesting_level (64) ----------------------------------------------------------

def test_php_bracket_nesting_64_kept_65_drops_the_variable():
    assert params.MAX_INPUT_NESTING == 64
    kept = params.parse_php_query("a" + "[x]" * 64 + "=1&b=2")
    value, depth = kept["a"], 0
    while isinstance(value, dict):
        value, depth = value["x"], depth + 1
    assert (depth, value, kept["b"]) == (64, "1", "2")
    # PHP deletes the whole top-level variable and keeps going with the others
    assert params.parse_php_query("a[y]=0&a" + "[x]" * 65 + "=1&b=2") == {"b": "2"}


@pytest.mark.parametrize("levels, status", [(64, 200), (65, 400)])
def test_nesting_limit_seen_by_a_client(client, settings, levels, status):
    # USER_ID[0]...[0]=2 is a non-empty array, intval() 1: the notification goes to user 1.
    # One level more and PHP drops USER_ID altogether: USER_ID_EMPTY.
    query = "USER_ID" + "[0]" * levels + "=2&MESSAGE=deep"
    for reply in (client.get(ADD + "?" + query),
                  client.post(ADD, data=query, content_type=FORM)):
        assert reply.status_code == status
        if status == 200:
            assert stored(settings, reply.get_json()["result"])[:2] == (1, "deep")
        else:
            assert reply.get_json()["error"] == "USER_ID_EMPTY"


def test_json_has_no_bracket_nesting_limit(client, settings):
    nested = 2
    for _ in range(100):
        nested = [nested]
    reply = client.post(ADD, json={"USER_ID": nested, "MESSAGE": "deep json"})
    assert reply.status_code == 200
    assert stored(settings, reply.get_json()["result"])[0] == 1


# --- JSON depth (json_decode's 512) --------------------------------------------------------

@pytest.mark.parametrize("arrays, status", [(510, 200), (511, 400)])
def test_json_depth(client, arrays, status):
    # the top object is one level: 1 + 510 arrays = 511 < 512 decodes; 512 levels is a
    # JSON_ERROR_DEPTH, the body counts as empty and USER_ID is missing
    body = '{"USER_ID":2,"MESSAGE":"m","X":' + "[" * arrays + "]" * arrays + "}"
    reply = client.post(ADD, data=body, content_type="application/json")
    assert reply.status_code == status
    if status == 400:
        assert reply.get_json()["error"] == "USER_ID_EMPTY"


def test_json_depth_direct():
    deepest = params.decode_json_body(b"[" * 511 + b"]" * 511)  # a list top level: keys 0..n-1
    levels, value = 1, deepest[0]
    while value:
        levels, value = levels + 1, value[0]
    assert (list(deepest), levels) == ([0], 510)
    assert params.decode_json_body(b"[" * 512 + b"]" * 512) == {}
    assert params.decode_json_body(b"[" * 100_000) == {}


# --- max_input_vars (1000) -----------------------------------------------------------------

def fillers(count: int) -> str:
    return "&".join(f"f{index}=1" for index in range(count))


@pytest.mark.parametrize("count, status", [(998, 200), (999, 400)])
def test_query_string_keeps_1000_variables(client, count, status):
    # $_GET: the 1001st variable and everything after it are dropped silently (a PHP warning)
    reply = client.get(f"{ADD}?{fillers(count)}&USER_ID=2&MESSAGE=last")
    assert reply.status_code == status
    if status == 400:
        assert reply.get_json()["error"] == "MESSAGE_EMPTY"


@pytest.mark.parametrize("count, status", [(999, 200), (1000, 400)])
def test_form_body_keeps_1001_variables(settings, clock, count, status):
    # $_POST registers a variable before counting it, so 1001 get in (php_variables.c)
    app = create_app(replace(settings, rate_limit="off"), clock=clock)
    body = f"{fillers(count)}&USER_ID=2&MESSAGE=last"
    reply = app.test_client().post(ADD, data=body, content_type=FORM)
    assert reply.status_code == status
    if status == 400:
        assert reply.get_json()["error"] == "MESSAGE_EMPTY"


def test_each_bracketed_variable_counts_once():
    decoded = params.parse_php_query("&".join(["a[]=1"] * 1500))
    assert len(decoded["a"]) == 1000


def test_json_body_has_no_variable_limit(settings, clock):
    app = create_app(replace(settings, rate_limit="off"), clock=clock)
    payload = {f"f{index}": 1 for index in range(5000)} | {"USER_ID": 2, "MESSAGE": "last"}
    assert app.test_client().post(ADD, json=payload).status_code == 200


# --- MESSAGE length (20000, cut) -----------------------------------------------------------

@pytest.mark.parametrize("length, kept", [(20000, True), (20006, True), (20007, False)])
def test_message_is_cut_past_20000_characters(client, settings, length, kept):
    message = "é" * length  # characters, not bytes
    reply = client.post("/rest/1/devtoken/im.notify.personal.add",
                        json={"USER_ID": 2, "MESSAGE": message})
    assert reply.status_code == 200
    text = stored(settings, reply.get_json()["result"])[1]
    if kept:
        assert text == message
    else:
        assert text == "é" * MESSAGE_LIMIT + MESSAGE_CUT_SUFFIX == "é" * 20000 + " (...)"


# --- batch length (50) ---------------------------------------------------------------------

def test_batch_runs_50_commands_and_refuses_the_rest(app):
    commands = {f"c{index:02}": "im.notify.personal.add?" + urlencode({"USER_ID": 2,
                                                                    "MESSAGE": f"n{index}"})
                for index in range(BATCH_MAX_LENGTH + 2)}
    reply = app.test_client().post("/rest/1/devtoken/batch", json={"cmd": commands})
    assert reply.status_code == 200
    result = reply.get_json()["result"]
    assert list(result["result"]) == [f"c{index:02}" for index in range(50)]
    assert result["result_error"] == {
        key: {"error": "ERROR_BATCH_LENGTH_EXCEEDED",
              "error_description": "Max batch length exceeded"} for key in ("c50", "c51")}


# --- ATTACH size (30720) -------------------------------------------------------------------

def attach_of_length(length: int) -> list:
    """A one-MESSAGE attach whose normalized JSON is exactly `length` bytes."""
    def size(count: int) -> int:
        normal = attach_rules.normalize_attach([{"MESSAGE": "x" * count}], attach_id=int(T0))
        return attach_rules.attach_json_length(normal)

    count = length - size(1) + 1
    assert size(count) == length
    return [{"MESSAGE": "x" * count}]


def test_attach_at_30720_passes_one_byte_more_is_oversize(client, settings):
    ok = client.post(ADD, json={"USER_ID": 2, "MESSAGE": "m", "ATTACH": attach_of_length(30720)})
    assert ok.status_code == 200
    assert len(stored(settings, ok.get_json()["result"])[2]) >= 30720
    over = client.post(ADD, json={"USER_ID": 2, "MESSAGE": "m",
                                  "ATTACH": attach_of_length(30721)})
    assert over.status_code == 400
    assert over.get_json() == {"error": "ATTACH_OVERSIZE", "error_description":
                               "You have exceeded the maximum allowable size of attach"}


def test_attach_size_counts_escaped_json_not_characters(settings, clock):
    # json_encode writes "é" as \u00e9: 6 bytes each, so 5200 of them are over 30720
    app = create_app(replace(settings, rate_limit="off"), clock=clock)
    reply = app.test_client().post(ADD, json={"USER_ID": 2, "MESSAGE": "m",
                                              "ATTACH": [{"MESSAGE": "é" * 5200}]})
    assert reply.get_json()["error"] == "ATTACH_OVERSIZE"


def test_attach_limit_is_a_setting(settings, clock):
    app = create_app(replace(settings, rate_limit="off", attach_max_bytes=59999), clock=clock)
    reply = app.test_client().post(ADD, json={"USER_ID": 2, "MESSAGE": "m",
                                              "ATTACH": attach_of_length(59999)})
    assert reply.status_code == 200
