"""Answering a call with a stub, through the same front door as every method.

`resolve` is where `dispatch` and `batch` look a method up: it returns the registered `Method`,
or a `Method` built from the stub that matches the call (an `override` stub wins over a
registered method only when its parameters match). From there the call is like any other:
credentials, scope (the stub's), faults, operating budget, the `time` envelope, the journal
(marked with the stub's id), `batch` references.
"""

from __future__ import annotations

from functools import partial

from b24emu.clock import sleep_latency
from b24emu.methods.registry import GLOBAL_SCOPE, Call, Method, upper_keys
from b24emu.rest import auth, errors
from b24emu.rest.envelope import Page
from b24emu.stubs import matching, template
from b24emu.stubs.schema import NO_SCOPE

LIST_PAGE_SIZE = 50
# Credentials are never matched on; `start` is (a recorded page answers its own `start`).
UNMATCHED_PARAMS = frozenset(auth.AUTH_PARAMS) - {"start"}


def fire_stub_events(emulator, portal: str, caller, events: list[dict]) -> None:
    """Events a stub names, fired after it answered with a result, as if its caller caused them:
    the events module delivers them to the handlers the portal's apps bound."""
    from b24emu.events import fire

    for event in events:
        fire(emulator, portal, event["event"], event.get("data") or {}, caller.user_id)


def resolve(emulator, portal: str, name: str, params: dict, *,
            stubs_stored: bool = True) -> Method | None:
    """The method that answers `name` with these parameters: a matching stub, else the
    registered method, else None. `stubs_stored=False` (the request's control snapshot saw no
    stub anywhere) skips the lookup."""
    registered = emulator.registry.get(name)
    stubs = getattr(emulator, "stubs", None)
    if stubs is None or not name or not stubs_stored:
        return registered
    candidates = stubs.candidates(portal, name, overrides_only=registered is not None)
    if not candidates:
        return registered
    cleaned = {key: value for key, value in params.items() if key not in UNMATCHED_PARAMS}
    stub = matching.best(candidates, cleaned)
    if stub is None:
        return registered
    return stub_method(stub)


def stub_method(stub: dict) -> Method:
    """A registry entry that answers with this stub."""
    scope = GLOBAL_SCOPE if stub["scope"] == NO_SCOPE else stub["scope"]
    return Method(stub["method"], scope, partial(answer, stub), private=False,
                  upper_keys=False, batchable=True, doc=f"stub {stub['id']}",
                  params=tuple(stub["params"]), stub_id=stub["id"])


def stubbed_methods(emulator, portal: str) -> list[Method]:
    """Methods only stubs answer (for `methods` and `method.get`), one entry per name."""
    stubs = getattr(emulator, "stubs", None)
    if stubs is None:
        return []
    found = []
    for name, scope in stubs.methods(portal).items():
        if emulator.registry.get(name) is None:
            found.append(Method(name, GLOBAL_SCOPE if scope == NO_SCOPE else scope, _unused,
                                upper_keys=False, doc="stub"))
    return found


def _unused(call: Call):  # a listing entry is never called
    raise errors.method_not_found()


def answer(stub: dict, call: Call):
    """The stub's answer for this call: the next of its sequence, templated, paged."""
    hit = call.emulator.stubs.take(stub["id"])
    chosen = pick(stub["answers"], hit)
    if stub["latency"]:
        wait(stub["latency"])
    if "error" in chosen:
        raise errors.emulated_fault(chosen["error"], chosen.get("error_description", ""),
                                    chosen.get("status", 400))
    result = template.render(chosen["result"], template.context_for(call, hit))
    if stub["events"]:
        fire_stub_events(call.emulator, call.caller.portal, call.caller, stub["events"])
    if "total" in chosen or "next" in chosen:  # a recorded page, answered as it was
        return Page(result, chosen.get("total"), chosen.get("next"))
    if is_list(result, chosen.get("list")):
        return list_result(result, call)
    return result


def wait(seconds: float) -> None:
    """A stub's latency: a slow method is slow in real time, like a fault's (at most
    `clock.MAX_REQUEST_SLEEP` in all per HTTP request)."""
    sleep_latency(seconds)


def pick(answers: list[dict], hit: int) -> dict:
    """The answer for the `hit`-th call: each answer serves `times` calls, the last one forever."""
    position = max(hit, 1)
    for entry in answers[:-1]:
        position -= entry.get("times", 1)
        if position <= 0:
            return entry
    return answers[-1]


def is_list(result, flag: bool | None) -> bool:
    """A result that behaves as a list method's: asked for, or (unless refused) a list of
    objects."""
    if flag is not None:
        return bool(flag) and isinstance(result, list)
    return isinstance(result, list) and all(isinstance(item, dict) for item in result)


def list_result(items: list, call: Call) -> Page:
    """`filter`, `order`, `select` and `start` applied by the one list engine."""
    from b24emu.methods.listing import list_page

    params = upper_keys(call.params)
    return list_page(items, filter=params.get("FILTER"), order=params.get("ORDER"),
                     select=params.get("SELECT"), start=call.start, page_size=LIST_PAGE_SIZE)
