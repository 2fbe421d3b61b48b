"""Bodies up to the size limit cost bounded memory and CPU; the journal keeps a capped rendering.

Costs are compared with an ordinary call on the same emulator (a ratio), never with absolute time:
a pathological body of the maximum size must cost less than `CPU_RATIO` ordinary calls, and the
memory allocated while it is answered, besides the body handed in (which the app does not copy),
stays within 2 times the body limit (the worst case is one huge JSON string: its text and the
decoded string are alive together).
"""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from b24emu.store.control import PARAMS_LIMIT, capped_json
from hypothesis import given, settings
from hypothesis import strategies as st

ADD = "/rest/1/devtoken/im.notify.personal.add.json"
LIMIT = 8 * 1024 * 1024
CPU_RATIO = 300
FORM = "application/x-www-form-urlencoded"


def _fill(unit: bytes, head: bytes = b"", tail: bytes = b"") -> bytes:
    return head + unit * ((LIMIT - len(head) - len(tail)) // len(unit)) + tail


PATHOLOGICAL = {
    "nested empty arrays": (_fill(b"[],", b"[", b"[]]"), "application/json"),
    "one huge string": (_fill(b"x", b'{"USER_ID":2,"MESSAGE":"', b'"}'), "application/json"),
    "many small numbers": (_fill(b"1,", b"[", b"1]"), "application/json"),
    "deep nesting": (_fill(b"["), "application/json"),
    "empty form pieces": (_fill(b"&", b"USER_ID=2&MESSAGE=hi"), FORM),
    "many form names": (_fill(b"a[]=1&", b"USER_ID=2&MESSAGE=hi&"), FORM),
}


def cpu_seconds(call) -> float:
    begin = time.process_time()
    call()
    return time.process_time() - begin


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_a_pathological_body_at_the_limit_costs_bounded_memory_and_cpu(client, name):
    body, content_type = PATHOLOGICAL[name]
    assert len(body) <= LIMIT

    def ordinary():
        client.post(ADD, json={"USER_ID": 2, "MESSAGE": "ordinary"})

    ordinary()
    unit = min(cpu_seconds(ordinary) for _ in range(5))
    answers = []
    tracemalloc.start()
    try:
        cost = cpu_seconds(lambda: answers.append(
            client.post(ADD, data=body, content_type=content_type)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    answer = answers[0]
    assert answer.status_code in (200, 413), answer.data[:300]
    payload = answer.get_json()
    assert "result" in payload or payload["error"] == "REQUEST_ENTITY_TOO_LARGE"
    if answer.status_code == 413:
        assert "more than 100000 values" in payload["error_description"]
    # On top of the body it is handed (which the server holds once, and the app does not copy):
    # the worst case, one huge JSON string, is its text and the decoded string.
    assert peak <= 2.05 * LIMIT, f"{name}: {peak / LIMIT:.2f} x the body limit"
    # tracemalloc slows allocation several fold; the bound is loose on purpose
    assert cost <= CPU_RATIO * max(unit, 0.001), f"{name}: {cost:.3f}s vs {unit:.4f}s"


def test_ten_thousand_multipart_fields_keep_the_first_thousand_as_php_does(client, emulator):
    fields = {"USER_ID": "2", "MESSAGE": "multipart", **{f"f{i}": "v" for i in range(10_000)}}
    answer = client.post(ADD, data=fields, content_type="multipart/form-data")
    assert answer.status_code == 200, answer.data[:300]
    entry = emulator.control.journal("default")[0]
    assert len(entry["params"]) == 1000 and entry["params"]["MESSAGE"] == "multipart"


def test_too_many_multipart_parts_are_refused_with_a_true_message(client):
    fields = {f"f{i}": "" for i in range(25_000)}
    answer = client.post(ADD, data=fields, content_type="multipart/form-data")
    assert answer.status_code == 413
    assert answer.get_json()["error_description"] == "The multipart body has more than 20000 parts"


def test_the_journal_keeps_a_capped_rendering_of_a_huge_call(client, emulator):
    message = "é" * (200 * 1024)
    client.post(ADD, json={"USER_ID": 2, "MESSAGE": message})
    stored = emulator.control.journal("default")[0]["params"]
    assert set(stored) == {"_truncated"} and len(stored["_truncated"]) == PARAMS_LIMIT
    assert stored["_truncated"].startswith('{"MESSAGE": "éé')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text() | st.integers(), children),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(min_value=0, max_value=400))
def test_capped_json_is_the_rendering_or_its_prefix(value, limit):
    full = json.dumps(value, ensure_ascii=False)
    capped = capped_json(value, limit)
    if len(full) <= limit:
        assert capped == full
    else:
        assert json.loads(capped) == {"_truncated": full[:limit]}
