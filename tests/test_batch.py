"""`batch` as clients use it: cmd shapes, halt, limits, refusals, references, captures (B 7.4)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_captures
from tests.test_captures import replay

ADD = "im.notify.personal.add"
KEYS = ["result", "result_error", "result_total", "result_next", "result_time"]
TIME_T0 = ('{"start":1767225600.0,"finish":1767225600.0,"duration":0.0,"processing":0.0,'
           '"date_start":"2026-01-01T00:00:00+00:00","date_finish":"2026-01-01T00:00:00+00:00",'
           '"operating_reset_at":1767226200,"operating":0}')


def batch(rest, cmd, **kwargs):
    """POST a batch as JSON through the default webhook; the inner result of a 200 answer."""
    params = {"cmd": cmd, **{k: v for k, v in kwargs.items() if k not in ("user", "code")}}
    auth: dict = {k: v for k, v in kwargs.items() if k in ("user", "code")}
    # raw JSON: Flask's test client would sort the keys of `json=`, a real client keeps its order
    user, code = auth.get("user", 1), auth.get("code", "devtoken")
    response = rest.client.post(f"/rest/{user}/{code}/batch.json", data=json.dumps(params),
                                content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body) == ["result", "time"] and list(body["result"]) == KEYS
    return body["result"]


def error(code: str, description: str) -> dict:
    """One result_error entry."""
    return {"error": code, "error_description": description}


def message(emulator, notification_id: int) -> str:
    """The stored text of a notification."""
    return emulator.notifications.get("default", notification_id)["message"]


def test_object_cmd_runs_every_command(rest, emulator):
    got = batch(rest, {"a": f"{ADD}?USER_ID=2&MESSAGE=one", "b": f"{ADD}?USER_ID=2&MESSAGE=two"})
    assert list(got["result"]) == ["a", "b"]
    assert [message(emulator, got["result"][k]) for k in "ab"] == ["one", "two"]
    assert got["result_error"] == [] and got["result_total"] == [] and got["result_next"] == []
    assert list(got["result_time"]) == ["a", "b"]
    assert set(got["result_time"]["a"]) >= {"start", "finish", "duration", "date_start"}


def test_array_cmd_answers_lists(rest, emulator):
    got = batch(rest, [f"{ADD}?USER_ID=2&MESSAGE=one", f"{ADD}?USER_ID=2&MESSAGE=two"])
    assert isinstance(got["result"], list) and isinstance(got["result_time"], list)
    assert [message(emulator, i) for i in got["result"]] == ["one", "two"]


def test_form_encoded_cmd_and_upper_case_names(client, emulator):
    body = f"CMD[x]={ADD}%3FUSER_ID%3D2%26MESSAGE%3Da%2Bb%2520c&HALT=0"
    response = client.post("/rest/1/devtoken/batch", data=body,
                           content_type="application/x-www-form-urlencoded")
    got = response.get_json()["result"]
    assert message(emulator, got["result"]["x"]) == "a b c"


def test_mixed_outcomes_keep_keys_and_order(rest):
    got = batch(rest, [f"{ADD}?MESSAGE=x", f"{ADD}?USER_ID=2&MESSAGE=ok", f"{ADD}?USER_ID=2"])
    assert list(got["result"]) == ["1"]  # keys 1 only: PHP writes an object
    assert got["result_error"] == {
        "0": error("USER_ID_EMPTY", "User ID can't be empty"),
        "2": error("MESSAGE_EMPTY", "Message can't be empty"),
    }
    assert list(got["result_time"]) == ["1"]


def test_non_string_commands_are_skipped(rest):
    got = batch(rest, {"a": 5, "b": {"x": 1}, "c": f"{ADD}?USER_ID=2&MESSAGE=hi"})
    assert list(got["result"]) == ["c"] and got["result_error"] == []


@pytest.mark.parametrize("halt, ran", [(True, False), (1, False), ("false", False),
                                       (False, True), (0, True), ("0", True), ("", True)])
def test_halt_stops_after_the_first_error(rest, halt, ran):
    got = batch(rest, {"bad": f"{ADD}?USER_ID=0", "good": f"{ADD}?USER_ID=2&MESSAGE=hi"},
                halt=halt)
    assert list(got["result_error"]) == ["bad"]
    assert ("good" in got["result"]) is ran


def test_fifty_one_commands(rest):
    cmd = {f"c{i}": f"{ADD}?USER_ID=2&MESSAGE=m{i}" for i in range(52)}
    got = batch(rest, cmd)
    assert list(got["result"]) == [f"c{i}" for i in range(50)]
    exceeded = error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
    assert got["result_error"] == {"c50": exceeded, "c51": exceeded}


def test_nested_batch_and_unknown_method_fail_alone(rest):
    got = batch(rest, {"n": f"batch?cmd[0]={ADD}", "u": "no.such.method?x=1",
                       "ok": "IM.Notify.Personal.Add?USER_ID=2&MESSAGE=hi"})
    assert got["result_error"] == {
        "n": error("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"),
        "u": error("ERROR_METHOD_NOT_FOUND", "Method not found!"),
    }
    assert list(got["result"]) == ["ok"]


def test_insufficient_scope_has_an_empty_description(rest):
    got = batch(rest, {"a": f"{ADD}?USER_ID=1&MESSAGE=hi"}, user=2, code="noimtoken")
    assert got["result_error"] == {"a": error("insufficient_scope", "")}
    assert got["result"] == []


def test_the_parent_caller_is_every_command_caller(rest, emulator):
    got = batch(rest, {"a": f"{ADD}?USER_ID=1&MESSAGE=hi"}, user=2, code="bobimtoken")
    assert emulator.notifications.get("default", got["result"]["a"])["sender_id"] == 2


def test_result_references(rest, emulator):
    got = batch(rest, {
        "a": f"{ADD}?USER_ID=2&MESSAGE=first",
        "b": f"{ADD}?USER_ID=2&MESSAGE=id%3D$result[a]",
        "c": f"{ADD}?USER_ID=2&MESSAGE=$RESULT[a] and $result[b]",
        "d": f"{ADD}?USER_ID=2&MESSAGE=err:$error[x][error]",
        "x": f"{ADD}?USER_ID=2",
        "e": f"{ADD}?USER_ID=2&MESSAGE=err:$error[x][error] $result[zz]",
    })
    first, second = got["result"]["a"], got["result"]["b"]
    assert message(emulator, second) == f"id={first}"
    assert message(emulator, got["result"]["c"]) == f"{first} and {second}"
    assert message(emulator, got["result"]["d"]) == "err:$error[x][error]"  # not yet known
    # a missing key stops the walk at an array, which is not inserted
    assert message(emulator, got["result"]["e"]) == "err:MESSAGE_EMPTY $result[zz]"


def test_whole_value_reference_can_be_an_array(rest, emulator):
    got = batch(rest, {"a": f"{ADD}?USER_ID=2&MESSAGE=hi",
                       "b": f"{ADD}?USER_ID=2&MESSAGE=$result"})  # no [key]: left as text
    assert message(emulator, got["result"]["b"]) == "$result"
    refs = batch(rest, {"a": f"{ADD}?USER_ID=2&MESSAGE=hi", "b": f"{ADD}?USER_ID=$time[a]"})
    # USER_ID becomes the whole time object (an array): intval(array) is 1 -> MESSAGE_EMPTY
    assert refs["result_error"]["b"]["error"] == "MESSAGE_EMPTY"


def test_exact_bytes_of_a_small_batch(rest):
    response = rest.webhook("batch", {"cmd": {"a": f"{ADD}?USER_ID=2&MESSAGE=hi"}})
    assert response.status_code == 200
    assert response.data.decode() == (
        '{"result":{"result":{"a":1},"result_error":[],"result_total":[],"result_next":[],'
        f'"result_time":{{"a":{TIME_T0}}}}},"time":{TIME_T0}}}'
    )


def test_all_failed_is_still_200_and_empty_cmd_is_all_empty(rest):
    got = batch(rest, [f"{ADD}?USER_ID=0"])
    assert got["result"] == [] and got["result_error"] == [error("USER_ID_EMPTY",
                                                                 "User ID can't be empty")]
    assert batch(rest, None) == {key: [] for key in KEYS}


OK = "ok"
CAPTURE_OUTCOMES = {
    ("b24jssdk", 1): {0: OK, 1: OK},
    ("b24jssdk", 2): {"a": OK, "b": OK},
    ("b24pysdk", 2): {0: OK, 1: OK},
    ("b24pysdk", 3): {"a": OK, "b": OK},
    # the unencoded "?" and "&" cut the command to USER_ID=1; MESSAGE=hi goes to the batch itself
    ("bitrix24_rest", 1): {"a": "MESSAGE_EMPTY"},
    ("fast_bitrix24", 0): {"order0000000000": OK},
    ("fast_bitrix24", 1): {"order0000000000": OK, "order0000000001": OK},
    ("fast_bitrix24", 3): {"x": OK},
    ("pybitrix24", 1): {"a": "ATTACH_ERROR", "b": OK},  # ATTACH[] items are Python reprs
}


@pytest.mark.parametrize("library, index", list(CAPTURE_OUTCOMES),
                         ids=[f"{lib}-{i}" for lib, i in CAPTURE_OUTCOMES])
def test_batch_capture_outcomes(client, emulator, library, index):
    response = replay(client, load_captures(library)[index])
    assert response.status_code == 200, response.data
    got = response.get_json()["result"]
    expected = CAPTURE_OUTCOMES[(library, index)]
    outcome = {}
    for source, is_error in ((got["result"], False), (got["result_error"], True)):
        items = enumerate(source) if isinstance(source, list) else source.items()
        for key, value in items:
            key = int(key) if str(key).isdigit() else key
            outcome[key] = value["error"] if is_error else OK
            if not is_error:
                row = emulator.notifications.get("default", value)
                # fast_bitrix24-1 sends TAG=T1 twice: the second replaces the first (Part A 7)
                assert row is None or (row["recipient_id"], row["sender_id"]) == (1, 1)
    assert outcome == expected


def test_full_captures_store_the_attach(client, emulator):
    for library, index, key in (("b24jssdk", 2, "a"), ("fast_bitrix24", 0, "order0000000000")):
        got = replay(client, load_captures(library)[index]).get_json()["result"]
        row = emulator.notifications.get("default", got["result"][key])
        assert row["message"] == "Hello world & co + 1 = \u00fc"
        assert [next(iter(b)) for b in row["attach"]["BLOCKS"]] == ["MESSAGE", "LINK", "DELIMITER"]


def test_every_batch_capture_is_covered():
    for library in ("b24jssdk", "b24pysdk", "bitrix24_rest", "fast_bitrix24", "pybitrix24"):
        for index, capture in enumerate(load_captures(library)):
            if "batch" in capture["path"]:
                assert (library, index) in CAPTURE_OUTCOMES
