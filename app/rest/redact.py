"""Credentials are never written in full: what the journal and the log show instead.

A secret is cut to its first three characters (`devtoken` → `dev***`); one shorter than
`SHOWN_FROM` characters shows none (`***`). Three rules, applied together:

- **by position**: in a `/rest/…` path every segment between the user and the method is the
  webhook code, however many slashes separate them (`/rest/1//devtoken/…`);
- **by name**: a parameter named like a credential (`CREDENTIAL_KEYS`, any case, at any depth, as
  an array `auth[]=` too, or nested under another name: `fields[PASSWORD]=`), from the query, a
  form or a JSON body, and inside batch `cmd` strings (`"im.notify.personal.add?AUTH=…"`,
  `"user.update?fields[PASSWORD]=…"`, percent-encoded names too);
- **by value**: every secret found by the first two rules (and the bearer token) is masked
  wherever else it appears in the same entry or log text.

Nothing here imports Flask: the journal (`dispatch._journal`) and the log (`routes`) call it.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

MASK = "***"
SHOWN_FROM = 8  # a secret this long or longer keeps its first three characters
SHOWN = 3
_CACHED_NAME = 128  # longest parameter name whose kind is remembered (see _kind)
# Parameters that carry a credential in Bitrix24 REST and OAuth calls (compared in lower case).
CREDENTIAL_KEYS = frozenset({
    "auth", "access_token", "refresh_token", "client_secret", "ap", "auth_id", "refresh_id",
    "application_token", "password", "token",
})
BATCH_KEY = "cmd"
REST_PREFIX = "rest"
# `name=value` and `"name": "value"` spellings of a credential inside free text (log lines).
_NAMES = "|".join(sorted(CREDENTIAL_KEYS, key=len, reverse=True))
# A name may close a bracket (`fields[password]=`, `fields%5Bpassword%5D=`) or be an array,
# keyed or not (`auth[]=`, `auth[0]=`, `auth%5B%5D=`, `fields[password][0]=`). A key segment
# holds no bracket of its own and a name at most `_KEY_SEGMENTS` of them, so a match tried from
# any credential name looks only a few segments ahead: the work stays linear in the text's
# length (with `%5B` allowed inside a segment, `auth%5B` repeated made every start scan to the
# end: 22 s for 63 KB).
_KEY_SEGMENTS = 8
_TEXT_PAIR = re.compile(
    r"""(?P<name>(?:(?<![\w.])|(?<=%5[bB]))["']?(?:""" + _NAMES + r""")["']?"""
    r"""(?:\]|%5[dD])?(?:\[[^\]\[=&\s]*\]|%5[bB](?:(?!%5[bBdD])[^=&\s])*%5[dD])"""
    r"""{0,""" + str(_KEY_SEGMENTS) + r"""})"""
    r"""(?P<sep>\s*[=:]\s*["']?)"""
    r"""(?P<value>[^\s&"',;}\]]+)""", re.IGNORECASE)
# `<password>value</password>`: a credential in an XML answer (`.xml` URLs).
_TEXT_TAG = re.compile(
    r"(?P<open><(?P<tag>" + _NAMES + r")(?:\s[^<>]*)?>)(?P<value>[^<]+)(?P<close></(?P=tag)\s*>)",
    re.IGNORECASE)
_TEXT_PATH = re.compile(r"(/rest/+[^/\s?#]+/+)([^/\s?#]+)(/+[^/\s?#]+)")


def mask(secret) -> str:
    """A credential as it may be shown: its first three characters, or nothing if it is short."""
    text = secret if isinstance(secret, str) else str(secret)
    return text[:SHOWN] + MASK if len(text) >= SHOWN_FROM else MASK


def is_credential(name) -> bool:
    """True for a parameter name that carries a credential (any case, PHP-normalised): its
    own (`auth`, `AUTH[]`) or any bracket segment of it (`fields[PASSWORD]`)."""
    return isinstance(name, str) and _kind(name)[1]


def _kind(name: str) -> tuple[bool, bool]:
    """(names a batch's `cmd`, names a credential) for one (decoded) parameter name; the
    answers for names up to `_CACHED_NAME` characters are kept (a client sends the same few
    names call after call; a cache of 4096 names of megabytes would hold gigabytes)."""
    if len(name) > _CACHED_NAME:
        return _name_kind(name)
    return _cached_kind(name)



def _name_kind(name: str) -> tuple[bool, bool]:
    """(names a batch's `cmd`, names a credential) for one (decoded) parameter name: a
    credential when its base or any `[segment]` is a credential key."""
    base, _, rest = name.lstrip(" ").partition("[")
    segments = [base, *(part.partition("]")[0] for part in rest.split("["))] if rest else [base]
    secret = any(segment.strip(" ").replace(".", "_").replace(" ", "_").lower() in CREDENTIAL_KEYS
                 for segment in segments)
    return name.lower() == BATCH_KEY, secret


_cached_kind = functools.lru_cache(maxsize=4096)(_name_kind)


def path(url_path: str, secrets: Iterable[str] = ()) -> str:
    """A `/rest/…` path with the webhook code segment(s) masked.

    Non-empty segments after `/rest/`: the first is the user, the last the method (when there
    are three or more); every segment in between is masked. `/rest/<method>` is left as it is.
    """
    segments = url_path.split("/")
    try:
        start = segments.index(REST_PREFIX) + 1
    except ValueError:
        return scrub(url_path, secrets)
    filled = [index for index in range(start, len(segments)) if segments[index]]
    hidden = filled[1:-1] if len(filled) >= 3 else filled[1:]
    for index in hidden:
        segments[index] = mask(segments[index])
    return scrub("/".join(segments), secrets)


def params(values: dict, secrets: Iterable[str] | None = None) -> dict:
    """Decoded parameters with every credential masked (see the module's rules). `secrets`:
    what `secrets_of` found in them (and more), when the caller has it already."""
    searched = _longest_first(secrets_of(values) if secrets is None else secrets)

    def leaf(value, batch: bool, hidden: bool):
        if hidden:
            return None if value is None else mask(value)
        if isinstance(value, str):
            return _replace(command(value) if batch else value, searched)
        return value

    return _rebuild(values, leaf)


def secrets_of(values, *extra) -> set[str]:
    """Every credential value in decoded parameters (and batch commands), plus `extra`."""
    return _extras(extra) | _scan(values)[0]


def journal_params(values: dict, *extra) -> tuple[set[str], dict]:
    """`secrets_of` and `params` in one walk for the usual call: (the secrets, the masked
    parameters). When no name in them is a credential or a batch `cmd` and no string holds a
    secret, nothing is masked and `values` itself is returned, not a copy."""
    found, plain, strings = _scan(values)
    secrets = _extras(extra) | found
    if plain:
        searched = _longest_first(secrets)
        if not any(secret in text for text in strings for secret in searched):
            return secrets, values
    return secrets, params(values, secrets)


def _extras(extra) -> set[str]:
    return {value for value in extra if isinstance(value, str) and value}


def _scan(values) -> tuple[set[str], bool, list[str]]:
    """(credential values found by name, whether no name is a credential or a batch `cmd`,
    every string value). Iterative, as `_rebuild`."""
    found: set[str] = set()
    strings: list[str] = []
    plain = True
    stack = [(values, False, False)]
    while stack:
        value, batch, hidden = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                names_batch, names_secret = _kind(key) if isinstance(key, str) else (False, False)
                if names_batch or names_secret:
                    plain = False
                stack.append((item, batch or names_batch, hidden or names_secret))
        elif isinstance(value, list):
            stack.extend((item, batch, hidden) for item in value)
        else:
            if isinstance(value, str):
                strings.append(value)
            if hidden and value is not None and value != "":
                found.add(value if isinstance(value, str) else str(value))
            elif batch and isinstance(value, str):
                for piece in value.partition("?")[2].split("&"):
                    name, equals, raw = piece.partition("=")
                    if equals and raw and is_credential(unquote_plus(name)):
                        found.update((raw, unquote_plus(raw)))
    return found, plain, strings


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every occurrence of the given secrets masked."""
    return _replace(text, _longest_first(secrets))


def _replace(text: str, searched: list[str]) -> str:
    for secret in searched:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text (a log line, a traceback) with credentials masked: the given secrets, webhook
    codes in `/rest/<user>/<code>/<method>` paths, `name=value` credential pairs
    (`fields[password]=` too) and `<name>value</name>` credential elements (XML)."""
    text = _TEXT_PATH.sub(lambda m: m.group(1) + _once(m.group(2)) + m.group(3), text)
    text = _TEXT_TAG.sub(lambda m: m.group("open") + _once(m.group("value")) + m.group("close"),
                         text)
    text = _TEXT_PAIR.sub(lambda m: m.group("name") + m.group("sep") + _once(m.group("value")),
                          text)
    return scrub(text, secrets)


def _once(value: str) -> str:
    """Mask a value unless it already is (text may pass through twice)."""
    return value if value.endswith(MASK) else mask(value)


class RedactingFilter(logging.Filter):
    """A log filter that masks credentials in a record's message and traceback (`scrub_text`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
        return True


def guard_logs(*names: str) -> None:
    """Put one `RedactingFilter` on each named logger (its records, not its children's)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def command(text: str) -> str:
    """A batch command `method?query` with the credential pairs of its query masked."""
    method, question, query = text.partition("?")
    if not question:
        return text
    pieces = []
    for piece in query.split("&"):
        name, equals, value = piece.partition("=")
        if equals and is_credential(unquote_plus(name)):
            piece = f"{name}={mask(unquote_plus(value))}"
        pieces.append(piece)
    return f"{method}?{'&'.join(pieces)}"


def _rebuild(root, leaf):
    """A copy of nested dicts and lists with every leaf replaced by `leaf(value, batch,
    hidden)`: `batch` inside a `cmd`, `hidden` under a credential's name. Iterative, because a
    JSON body may nest 511 levels deep."""
    if not isinstance(root, (dict, list)):
        return leaf(root, False, False)
    top: dict | list = {} if isinstance(root, dict) else []
    stack = [(root, top, False, False)]
    while stack:
        source, target, batch, hidden = stack.pop()
        pairs = source.items() if isinstance(source, dict) else ((None, item) for item in source)
        for key, item in pairs:
            names_batch, names_secret = _kind(key) if isinstance(key, str) else (False, False)
            item_batch, item_hidden = batch or names_batch, hidden or names_secret
            if isinstance(item, (dict, list)):
                value = {} if isinstance(item, dict) else []
                stack.append((item, value, item_batch, item_hidden))
            else:
                value = leaf(item, item_batch, item_hidden)
            if isinstance(target, dict):
                target[key] = value
            else:
                target.append(value)
    return top


def _longest_first(secrets: Iterable[str]) -> list[str]:
    """Secrets long enough to search for, longest first (a short one would mask ordinary text)."""
    return sorted({s for s in secrets if isinstance(s, str) and len(s) >= SHOWN_FROM},
                  key=len, reverse=True)
