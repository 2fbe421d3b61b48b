"""Which stub answers a call: method name, then a subset of the parameters.

Parameters are compared after PHP decoding: keys upper-cased at every level, scalars compared as
PHP strings (`5`, `5.0` and `"5"` are equal, `true` is `"1"`, `null` is `""`), lists as maps
of their indexes. A stub matches when each of its parameters is present in
the call with an equal value (nested maps: recursively, a subset again). Among matching stubs the
most specific (most matched values) wins, then the newest.
"""

from __future__ import annotations

from b24emu import php


def normalize(value):
    """A parameter value in the form stubs are compared in."""
    if isinstance(value, dict):
        return {str(key).upper(): normalize(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return {str(index): normalize(item) for index, item in enumerate(value)}
    return php.to_str(value)


def matches(wanted: dict, given) -> bool:
    """Whether every (normalized) wanted value is in the (normalized) given parameters."""
    if not isinstance(given, dict):
        return False
    for key, value in wanted.items():
        if key not in given:
            return False
        if isinstance(value, dict):
            if not matches(value, given[key]):
                return False
        elif isinstance(given[key], dict) or given[key] != value:
            return False
    return True


def specificity(wanted: dict) -> int:
    """How many values a stub's parameters pin down."""
    return sum(specificity(value) if isinstance(value, dict) else 1 for value in wanted.values())


def best(stubs: list[dict], params: dict) -> dict | None:
    """The stub that answers: matching, most specific, then newest (highest id)."""
    given = normalize(params)
    found = [stub for stub in stubs if matches(normalize(stub["params"]), given)]
    if not found:
        return None
    return max(found, key=lambda stub: (specificity(normalize(stub["params"])), stub["id"]))
