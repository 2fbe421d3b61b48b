"""`b24emu stubs import`: a recording's answers as stubs, for the methods the emulator lacks.

Calls are grouped by method and parameters (credentials never recorded). Each group becomes one
stub matching exactly those parameters; when the portal answered the same call differently over
time, the answers become a sequence in recorded order (the last one repeats). Answers that were
pages keep their `total` and `next`; other lists are answered as they were (`"list": false`).
Calls that did not get a Bitrix answer (not JSON, or neither `result` nor `error`) and calls of
methods the portal does not have (`ERROR_METHOD_NOT_FOUND`) are skipped.
"""

from __future__ import annotations

import json


def answer_of(call: dict) -> dict | None:
    """The stub answer for one recorded call, or None when it had no Bitrix answer."""
    body = call.get("response")
    if not isinstance(body, dict):
        return None
    if body.get("error") == "ERROR_METHOD_NOT_FOUND":
        return None  # the emulator answers unknown methods so already
    if "error" in body and call["status"] >= 400:
        answer = {"error": str(body["error"]), "status": call["status"]}
        if body.get("error_description"):
            answer["error_description"] = str(body["error_description"])
        return answer
    if "result" not in body or call["status"] != 200:
        return None
    answer = {"result": body["result"]}
    for key in ("total", "next"):
        if isinstance(body.get(key), int) and not isinstance(body.get(key), bool):
            answer[key] = body[key]
    if "total" not in answer and "next" not in answer:
        answer["list"] = False
    return answer


def stubs_from_recording(recording: dict, emulated) -> tuple[list[dict], int]:
    """(stub documents, how many calls were skipped because the emulator has the method)."""
    groups: dict[tuple[str, str], dict] = {}
    skipped = 0
    for call in recording["calls"]:
        method = call["method"].lower()
        if method in emulated:
            skipped += 1
            continue
        answer = answer_of(call)
        if answer is None:
            continue
        params = call.get("params") if isinstance(call.get("params"), dict) else {}
        key = (method, json.dumps(params, sort_keys=True))
        groups.setdefault(key, {"method": method, "params": params, "answers": []})[
            "answers"].append(answer)
    return [_stub(group) for group in groups.values()], skipped


def _stub(group: dict) -> dict:
    runs: list[dict] = []
    for answer in group["answers"]:
        if runs and {k: v for k, v in runs[-1].items() if k != "times"} == answer:
            runs[-1]["times"] = runs[-1].get("times", 1) + 1
        else:
            runs.append(dict(answer))
    stub = {"method": group["method"], "params": group["params"]}
    if len(runs) == 1:
        runs[0].pop("times", None)
        stub.update(runs[0])
    else:
        runs[-1].pop("times", None)
        stub["sequence"] = runs
    return stub
