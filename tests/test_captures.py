"""Requests real client libraries sent for im.notify.personal.add, replayed byte for byte."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import load_captures

WEBHOOK_KEY = hashlib.md5(b"").hexdigest()[:5]
FULL = {"message": "Hello world & co + 1 = \u00fc", "message_out": "out msg",
        "notify_tag": f"MP|{WEBHOOK_KEY}|T1", "notify_sub_tag": f"MP|{WEBHOOK_KEY}|S1",
        "blocks": ["MESSAGE", "LINK", "DELIMITER"]}
BARE = {"message": "Hello world & co + 1 = \u00fc", "message_out": "", "notify_tag": "",
        "notify_sub_tag": "", "blocks": ["MESSAGE", "LINK", "DELIMITER"]}
OAUTH = {"message": "oauth", "message_out": "", "notify_tag": "", "notify_sub_tag": "",
         "blocks": None}
# bitrix24_rest leaves `&`, `+` and `=` unencoded and names the attach `[ATTACH][0]…`, which PHP
# drops (empty variable name): the portal stores the text up to the stray `&` and no attach.
BROKEN_GET = {"message": "Hello world", "message_out": "out msg",
              "notify_tag": f"MP|{WEBHOOK_KEY}|T1", "notify_sub_tag": f"MP|{WEBHOOK_KEY}|S1",
              "blocks": None}

CASES = [
    ("b24jssdk", 0, 1, FULL),
    ("b24jssdk", 3, 1, OAUTH),
    ("b24pysdk", 0, 1, BARE),
    ("b24pysdk", 1, 1, FULL),
    ("b24pysdk", 4, 1, OAUTH),
    ("bitrix24_rest", 0, 1, BROKEN_GET),
    ("fast_bitrix24", 2, 1, FULL),
    ("fast_bitrix24", 4, 1, OAUTH),
    ("pybitrix24", 0, 1, FULL),
    ("pybitrix24", 2, 1, OAUTH),
]


def replay(client, capture: dict):
    """Send one captured request as it was: method, path, raw query, headers and body."""
    return client.open(
        capture["path"], method=capture["method"], query_string=capture["query"],
        headers=capture["headers"], data=capture["body"].encode("utf-8"),
    )


@pytest.mark.parametrize("library, index, recipient, expected", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_capture_is_answered_and_stored(client, emulator, library, index, recipient, expected):
    capture = load_captures(library)[index]
    response = replay(client, capture)
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert isinstance(body["result"], int) and set(body["time"]) >= {"start", "date_start"}
    row = emulator.notifications.get("default", body["result"])
    assert row["recipient_id"] == recipient and row["sender_id"] == 1
    got = {key: row[key] for key in ("message", "message_out", "notify_tag", "notify_sub_tag")}
    got["blocks"] = [next(iter(b)) for b in row["attach"]["BLOCKS"]] if row["attach"] else None
    assert got == expected


def test_every_non_batch_capture_is_covered():
    covered = {(library, index) for library, index, _, _ in CASES}
    for library in ("b24jssdk", "b24pysdk", "bitrix24_rest", "fast_bitrix24", "pybitrix24"):
        for index, capture in enumerate(load_captures(library)):
            if "batch" not in capture["path"]:
                assert (library, index) in covered
