"""`batch`: up to 50 REST calls in one request, with `$result[key][field]` references (B 7.4).

A port of ``CRestProvider::methodsBatch`` and ``CRestUtil::ParseBatchQuery`` /
``processBatchStructure`` / ``processBatchElement``. Every command runs through
`dispatch.execute` with the parent's caller; only the scope is re-checked (B 7.4).
The answer is always HTTP 200, whatever the commands did.
"""

from __future__ import annotations

import re

from b24emu import php
from b24emu.methods.registry import GLOBAL_SCOPE, Call, method, upper_keys
from b24emu.rest import auth, dispatch, envelope, errors
from b24emu.rest.errors import BitrixError
from b24emu.rest.params import parse_php_query
from b24emu.stubs import answer as stubs

BATCH_MAX_LENGTH = 50  # CRestUtil::BATCH_MAX_LENGTH
REFERENCE_NAMES = ("result", "next", "total", "time", "error")
# processBatchElement: "/\$(result|next|total|time|error)([^\s]*)/i", path parts "/\[([^\]]+)\]/"
_REFERENCE = re.compile(r"\$(" + "|".join(REFERENCE_NAMES) + r")(\S*)", re.IGNORECASE)
_PATH_PART = re.compile(r"\[([^\]]+)\]")


@method("batch", scope=GLOBAL_SCOPE, upper_keys=False, batchable=False,
        params=("cmd", "halt"))
def batch(call: Call):
    """Run the commands of `cmd` in order; per-command results, errors, totals, nexts, times."""
    params = upper_keys(call.params)  # array_change_key_case(CASE_UPPER): CMD or cmd
    halt = php.truthy(params.get("HALT"))  # (bool)$query['HALT']: the string "false" is true
    state = {name: {} for name in REFERENCE_NAMES}
    for index, (key, command) in enumerate(_commands(params.get("CMD"))):
        if index < BATCH_MAX_LENGTH:
            outcome = _run_command(call, command, state)
        else:
            outcome = errors.batch_length_exceeded()
        if isinstance(outcome, BitrixError):
            state["error"][key] = {"error": outcome.code,
                                   "error_description": outcome.description, **outcome.extra}
            if halt:
                break
        else:
            _record_success(state, key, *outcome)
    return {"result": state["result"], "result_error": state["error"],
            "result_total": state["total"], "result_next": state["next"],
            "result_time": state["time"]}


def _commands(cmd) -> list[tuple]:
    """(key, "method?query") pairs in order; non-string values are skipped silently."""
    if isinstance(cmd, list):
        items = list(enumerate(cmd))
    elif isinstance(cmd, dict):
        items = list(cmd.items())
    else:  # foreach over a scalar runs no command
        items = []
    return [(key, value) for key, value in items if isinstance(value, str)]


def _run_command(call: Call, command: str, state: dict):
    """One sub-call: (result, time object), or the BitrixError it ended with."""
    name, _, query = command.partition("?")  # parse_url(): path is the method, then the query
    params = _substitute(parse_php_query(query), state) if query else {}
    target = stubs.resolve(call.emulator, call.caller.portal, name.lower(), params)
    if target is None:
        return errors.method_not_found()
    if not target.batchable:  # download, upload and (rest 24.0.0+) batch itself
        return errors.batch_method_not_allowed()
    clock = call.emulator.clock
    started = clock.now()
    try:
        _check_scope(call, target)
        result, processing, budget = dispatch.execute(
            call.emulator, target, params, call.caller, started, request_id=call.request_id,
            faults_armed=call.faults_armed)
    except BitrixError as error:
        return error
    time = envelope.time_object(start=started, finish=clock.now(), processing=processing,
                                zone=call.emulator.zone, operating=budget.operating,
                                operating_reset_at=budget.reset_at)
    return result, time


def _check_scope(call: Call, target) -> None:
    """CRestServerBatchItem re-checks only the scope; its error has an empty description."""
    try:
        auth.check_scope(call.caller, target)
    except BitrixError as error:
        raise BitrixError(error.code, "", error.status) from None


def _record_success(state: dict, key, result, time: dict) -> None:
    """A successful command: its result, and total/next when it was a page (B 4.1)."""
    if isinstance(result, envelope.Page):
        state["result"][key] = result.items
        if result.total is not None:  # a list's total (0 under start=-1)
            state["total"][key] = php.intval(result.total)
        if result.next_start is not None:
            state["next"][key] = result.next_start
    else:
        state["result"][key] = result
    state["time"][key] = time


def _substitute(params, state: dict):
    """processBatchStructure: resolve references in every key and value, recursively."""
    items = enumerate(params) if isinstance(params, list) else params.items()
    resolved: dict = {}
    for key, value in items:
        new_key = _resolve(key, state)
        if not isinstance(new_key, (str, int)) or isinstance(new_key, bool):
            new_key = key  # an array (or null) cannot be a PHP array key: keep the original
        else:
            new_key = php.canonical_int_key(new_key)
        if isinstance(value, (list, dict)):
            resolved[new_key] = _substitute(value, state)
        else:
            resolved[new_key] = _resolve(value, state)
    if isinstance(params, list) and php.is_list_shaped(resolved):
        return list(resolved.values())
    return resolved


def _resolve(text, state: dict):
    """processBatchElement: a whole-value reference becomes the value, else textual replace."""
    if not isinstance(text, str) or "$" not in text:
        return text
    for match in list(_REFERENCE.finditer(text)):
        parts = _PATH_PART.findall(match.group(2))
        if not parts:  # "$result" with no [key] is left as it is
            continue
        value = _walk(state[match.group(1).lower()], parts)
        if match.group(0) == text:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = php.to_str(value)  # is_numeric($r): numbers are inserted as strings
        if isinstance(value, str):  # arrays, null and booleans are not inserted
            text = text.replace(match.group(0), value)
    return text


def _walk(value, parts: list[str]):
    """Follow [k1][k2]… and stop at the first missing key (isset: a null counts as missing)."""
    for part in parts:
        if isinstance(value, dict):
            child = value.get(php.canonical_int_key(part), value.get(part))
        elif isinstance(value, list):
            index = php.canonical_int_key(part)
            child = value[index] if isinstance(index, int) and 0 <= index < len(value) else None
        else:
            child = None
        if child is None:
            break
        value = child
    return value
