"""The one list of REST methods: routing, `batch`, `methods` and `method.get` all read it.

A method module registers its handlers with
`@method("im.notify.personal.add", scope="im", params=("USER_ID", "MESSAGE", ...))`: one entry
gives the name, the scope, the documented parameters and the handler.
A handler takes a `Call` and returns the `result` value, or raises `BitrixError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GLOBAL_SCOPE = "_global"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the authenticated webhook or OAuth token (B 6)."""

    portal: str
    user_id: int
    auth_type: str  # "apauth" (webhook) or "oauth"
    scopes: frozenset[str]
    webhook_id: int | None = None
    client_id: str | None = None
    app_name: str = ""

    @property
    def credential(self) -> str:
        """The entity limits are keyed on: the OAuth client id or the webhook id (B 5.2)."""
        return self.client_id if self.auth_type == "oauth" else str(self.webhook_id)


@dataclass
class Call:
    """One method invocation: what handlers receive."""

    method: str
    params: dict
    caller: Caller
    emulator: Any  # b24emu.context.Emulator
    started_at: float
    start: Any = None  # the `start` paging parameter, passed apart from params (B 7.1)
    request_id: str = ""  # the journal's id of the HTTP request (a batch shares its parent's)
    faults_armed: bool = False  # whether the control API has armed any fault (checked per call)


@dataclass(frozen=True)
class Method:
    """A registered method: name (lower case), scope, handler and its flags."""

    name: str
    scope: str
    handler: Callable[[Call], Any]
    private: bool = False  # callable, but left out of `methods` (B 2)
    upper_keys: bool = True  # im handlers upper-case top-level names (B 1.2)
    batchable: bool = True
    doc: str = field(default="")
    params: tuple[str, ...] = ()  # the documented parameters, as the handler reads them
    stub_id: int | None = None  # set when a stub (b24emu.stubs) answers instead


class Registry:
    """Methods by lower-case name."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def register(self, name: str, *, scope: str, private: bool = False,
                 upper_keys: bool = True, batchable: bool = True,
                 params: tuple[str, ...] = ()):
        """Decorator: add a handler under `name`."""

        def decorator(handler: Callable[[Call], Any]):
            key = name.lower()
            if key in self._methods:
                raise ValueError(f"method {name} registered twice")
            doc = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""
            self._methods[key] = Method(key, scope, handler, private, upper_keys, batchable, doc,
                                        tuple(params))
            return handler

        return decorator

    def get(self, name: str) -> Method | None:
        """The method called `name` (any case), or None."""
        return self._methods.get(name.lower())

    def all(self) -> list[Method]:
        """Every method, by name."""
        return [self._methods[key] for key in sorted(self._methods)]


REGISTRY = Registry()
method = REGISTRY.register


def upper_keys(params: dict) -> dict:
    """PHP array_change_key_case(CASE_UPPER): the later of two spellings wins (B 1.2)."""
    result: dict = {}
    for key, value in params.items():
        upper = key.upper() if isinstance(key, str) else key
        result.pop(upper, None)
        result[upper] = value
    return result
