"""A credential nested under another name (`fields[PASSWORD]`) is masked however short, in the
journal, inside batch `cmd` strings and in a recording; a credential element of an XML answer is
masked; the recording proxy's log is filtered without `create_app`."""

from __future__ import annotations

import json
import time

import pytest
from b24emu.record import recording as rec
from b24emu.rest import redact

SHORT = "hunter2"  # under 8 characters: only the name rule can hide it


def test_a_nested_credential_name_is_masked_in_batch_commands():
    values = {"cmd": {"a": "user.update?ID=1&fields[PASSWORD]=hunter2",
                      "b": "user.update?ID=1&fields%5Bpassword%5D=hunter2&fields[NAME]=x",
                      "c": "user.update?ID=1&fields[PASSWORD]=longpassword99"}}
    shown = redact.params(values)
    assert shown["cmd"] == {"a": "user.update?ID=1&fields[PASSWORD]=***",
                            "b": "user.update?ID=1&fields%5Bpassword%5D=***&fields[NAME]=x",
                            "c": "user.update?ID=1&fields[PASSWORD]=lon***"}
    assert "longpassword99" in redact.secrets_of(values)
    assert redact.is_credential("fields[PASSWORD]") and redact.is_credential("a[b][auth][]")
    assert not redact.is_credential("fields[NAME]")


def test_the_journal_masks_a_short_nested_credential(client, emulator):
    client.post("/rest/1/devtoken/batch", json={"cmd": {
        "a": "user.update?ID=1&fields[PASSWORD]=hunter2"}})
    client.post("/rest/1/devtoken/user.update?fields%5BPASSWORD%5D=hunter2&ID=1")
    entries = client.get("/_emulator/journal?limit=10").get_json()["items"]
    text = json.dumps(entries)
    assert SHORT not in text
    batch = next(entry for entry in entries if entry["path"].endswith("/batch"))
    assert batch["params"]["cmd"]["a"] == "user.update?ID=1&fields[PASSWORD]=***"


def _entry(**request) -> dict:
    options = {"method": "user.add", "segment": "user.add", "http_method": "POST",
               "query": b"", "content_type": "", "body": b"", "form_pairs": None,
               "status": 200, "answer_type": "application/json", "answer": b'{"result":1}'}
    return rec.entry(**{**options, **request})


def test_a_recording_masks_a_short_nested_credential_in_every_body():
    form = _entry(content_type="application/x-www-form-urlencoded",
                  body=b"fields[PASSWORD]=hunter2&fields[NAME]=x")
    query = _entry(query=b"fields%5BPASSWORD%5D=hunter2&ID=1")
    multipart = _entry(content_type="multipart/form-data; boundary=XX",
                       body=b'--XX\r\nContent-Disposition: form-data; name="fields[PASSWORD]"'
                            b"\r\n\r\nhunter2\r\n--XX--\r\n",
                       form_pairs=[("fields[PASSWORD]", SHORT)])
    batch = _entry(method="batch", segment="batch", content_type="application/json",
                   body=json.dumps({"cmd": {"a": "user.add?fields[PASSWORD]=hunter2"}}).encode())
    for call in (form, query, multipart, batch):
        assert SHORT not in json.dumps(call), call
    assert form["request"]["body"] == "fields[PASSWORD]=***&fields[NAME]=x"
    assert query["request"]["query"] == "fields%5BPASSWORD%5D=***&ID=1"
    assert batch["params"]["cmd"]["a"] == "user.add?fields[PASSWORD]=***"


def test_credentials_in_an_xml_answer_are_masked():
    xml = (b'<?xml version="1.0" encoding="utf-8"?><response><result>'
           b"<application_token>x</application_token><AUTH>longaccesstoken1</AUTH>"
           b"<name>Ada</name></result></response>")
    call = _entry(segment="app.info.xml", answer_type="text/xml", answer=xml)
    assert call["response_text"] == (
        '<?xml version="1.0" encoding="utf-8"?><response><result>'
        "<application_token>***</application_token><AUTH>lon***</AUTH>"
        "<name>Ada</name></result></response>")
    assert redact.scrub_text("<password a='1'>hunter2</password >") == (
        "<password a='1'>***</password >")


def test_a_nested_credential_pair_in_a_log_line_is_masked():
    line = "GET /rest/user.add?fields%5BPASSWORD%5D=hunter2&fields[token]=abc&auth%5B%5D=zz"
    assert redact.scrub_text(line) == (
        "GET /rest/user.add?fields%5BPASSWORD%5D=***&fields[token]=***&auth%5B%5D=***")


@pytest.mark.parametrize("values, extra", [
    ({"USER_ID": 2, "MESSAGE": "hello", "ATTACH": [{"MESSAGE": "x"}]}, ("devtoken",)),
    ({"MESSAGE": "the code devtoken leaked", "n": [1, 2.5, None, True]}, ("devtoken",)),
    ({"auth": "access-token-123", "MESSAGE": "access-token-123 again"}, ()),
    ({"fields": {"PASSWORD": "longpassword99", "NAME": "x"}}, ("bearer-token-1",)),
    ({"cmd": {"a": "user.update?ID=1&fields[PASSWORD]=hunter2"}}, ()),
    ({"MESSAGE": "short"}, ("abc",)),  # a secret under 8 characters is not searched for
])
def test_the_journal_walk_masks_what_the_two_walks_mask(values, extra):
    """`journal_params` is `secrets_of` and `params` in one walk: the same secrets and the same
    masked parameters; with nothing to mask, the parameters themselves (no copy)."""
    secrets, shown = redact.journal_params(values, *extra)
    assert secrets == redact.secrets_of(values, *extra)
    assert shown == redact.params(values, secrets)
    plain = shown == values
    assert (shown is values) == plain


@pytest.mark.parametrize("text", ["GET /rest/user.get?auth[0]=sekret1&x=1",
                                  "auth%5B0%5D=sekret1", "fields[PASSWORD][0]=sekret1",
                                  "fields%5Bpassword%5D%5B1%5D=sekret1"])
def test_a_keyed_array_credential_is_masked_in_log_text(text):
    """`auth[0]=` is a credential (`is_credential`), so a log line masks its value too, short
    as it is (a value under 8 characters is never searched for elsewhere)."""
    assert "sekret1" not in redact.scrub_text(text)


@pytest.mark.parametrize("unit", ["auth%5B", "auth%5bx", "auth[", "fields%5Bauth%5D%5B",
                                  "\"auth%5B", "token%5D%5Bauth%5B"])
def test_masking_a_text_of_credential_names_costs_what_an_ordinary_text_does(unit):
    """Every credential name starts a match; each looks at most a few key segments ahead, so
    63 KB of `auth%5B` (a log line, a recorded body) costs about what 63 KB of ordinary
    `name=value` pairs does. With a segment that could hold `%5B` it took 22 s."""
    size = 63_000
    hostile = unit * (size // len(unit))
    ordinary = "x=1&auth=abcdefghij&" * (size // 20)

    def cpu(text):
        begin = time.process_time()
        redact.scrub_text(text)
        return time.process_time() - begin

    assert cpu(hostile) < 10 * max(cpu(ordinary), 0.001)


def test_a_huge_parameter_name_is_not_kept_in_the_name_cache():
    redact._cached_kind.cache_clear()
    redact.is_credential("auth")
    huge = "x" * 1_000_000
    assert not redact.is_credential(huge)
    assert redact.is_credential("fields[" + "y" * 500 + "][password]")  # long, still read
    assert redact._cached_kind.cache_info().currsize == 1  # only "auth" is kept
