"""Templates in a stub's result: echo what the call sent, safely (nothing is evaluated).

A string value of the result may contain `{{ expression }}` placeholders:

- `params.ID`, `params.FILTER.ID`, `params.IDS.0`: a request parameter (names compared
  case-insensitively, list items by index)
- `user_id`: the calling user's id
- `hit`: how many times this stub has answered, this call included (1, 2, ...)
- `now`: the emulator's time, ISO 8601 in the portal's zone (`2026-01-01T00:00:00+00:00`)
- `now_unix`: the emulator's time in unix seconds (an integer)
- `method`: the method name (lower case)

A placeholder followed by `|int`, `|str` or `|json` converts the value: `{{params.ID|int}}`.
When a placeholder is the whole string, the value keeps its JSON type (a list stays a list);
inside a longer string it is inserted as text. A missing value is `null` (whole string) or empty
text. Keys are never templated; only the names above are known, anything else is left as it is.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from b24emu import php

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*"
                         r"(?:\|\s*(int|str|json)\s*)?\}\}")
NAMES = ("params", "user_id", "hit", "now", "now_unix", "method")
MISSING = object()


def render(value, context: dict):
    """The result with every placeholder replaced (a new structure; `value` is not changed)."""
    if isinstance(value, str):
        return _render_text(value, context)
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    return value


def context_for(call, hit: int) -> dict:
    """What placeholders may read for one call."""
    return {"params": call.params, "user_id": call.caller.user_id, "hit": hit,
            "now": datetime.fromtimestamp(int(call.started_at), call.emulator.zone)
            .isoformat(timespec="seconds"),
            "now_unix": int(call.started_at), "method": call.method}


def _render_text(text: str, context: dict):
    if "{{" not in text:
        return text
    whole = PLACEHOLDER.fullmatch(text)
    if whole and whole.group(1).split(".")[0] in NAMES:
        value = _convert(_lookup(whole.group(1), context), whole.group(2))
        return None if value is MISSING else value

    def replace(match: re.Match) -> str:
        if match.group(1).split(".")[0] not in NAMES:
            return match.group(0)
        value = _convert(_lookup(match.group(1), context), match.group(2))
        if value is MISSING or value is None:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return php.to_str(value)

    return PLACEHOLDER.sub(replace, text)


def _lookup(path: str, context: dict):
    """Walk `a.b.c`; names compared case-insensitively below the top level."""
    parts = path.split(".")
    value = context.get(parts[0], MISSING)
    for part in parts[1:]:
        if isinstance(value, dict):
            value = next((item for key, item in value.items()
                          if str(key).upper() == part.upper()), MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _convert(value, how: str | None):
    if value is MISSING or how is None:
        return value
    if how == "int":
        return php.intval(value)
    if how == "json":
        return json.dumps(value, ensure_ascii=False)
    return php.to_str(value)
