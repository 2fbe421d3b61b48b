"""One REST call from decoded request to envelope: method lookup, auth, scope, handler.

The order is the portal's (B 1.3): an unknown method is 404 before credentials are looked at;
bad credentials are 401 before any handler runs. `execute` is shared with `batch`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.methods.registry import Call, Caller, Method, upper_keys
from app.rest import auth, envelope, errors
from app.rest.errors import BitrixError

log = logging.getLogger("b24emu.rest")


@dataclass(frozen=True)
class RestRequest:
    """A REST request after URL and parameter decoding, before auth."""

    method: str
    transport: str
    params: dict
    portal: str
    aplogin: str | None = None
    ap: str | None = None
    bearer: str | None = None
    client_ip: str = ""


def handle(emulator, request: RestRequest) -> tuple[bytes, int, dict]:
    """Answer one REST request: bytes, status and headers."""
    started = emulator.clock.now()
    method = emulator.registry.get(request.method)
    try:
        _admit(emulator, request, started)
        if method is None:
            raise errors.method_not_found()
        caller = auth.authenticate(
            emulator.portals, request.portal, aplogin=request.aplogin, ap=request.ap,
            bearer=request.bearer, params=request.params, now=started,
        )
        result, processing, budget = execute(emulator, method, request.params, caller, started)
    except BitrixError as error:
        _log_call(request.method, error.status, error.code, emulator.clock.now() - started)
        return envelope.error_response(error, request.transport)
    finished = emulator.clock.now()
    time = envelope.time_object(
        start=started, finish=finished, processing=processing, zone=emulator.zone,
        operating=budget.operating, operating_reset_at=budget.reset_at,
    )
    _log_call(method.name, 200, "", finished - started)
    return envelope.render(envelope.success_body(result, time), 200, request.transport)


def _admit(emulator, request: RestRequest, now: float) -> None:
    """The portal's front door: the leaky bucket refuses before anything else (B 5.1)."""
    limiter = emulator.rate_limiter
    if limiter is not None and not limiter.admit(request.portal, request.client_ip, now):
        raise errors.query_limit_exceeded()


def execute(emulator, method: Method, params: dict, caller: Caller, started: float):
    """Run a method for a caller: (result, processing seconds, operating budget)."""
    auth.check_scope(caller, method)
    key = (caller.portal, caller.auth_type, caller.credential, method.name)
    if emulator.operating.blocked(key, started):
        raise errors.operation_time_limit()
    call = Call(
        method=method.name,
        params=_handler_params(method, params),
        caller=caller,
        emulator=emulator,
        started_at=started,
        start=params.get("start"),
    )
    begin = emulator.clock.now()
    try:
        result = method.handler(call)
    except BitrixError:
        # A run is billed whatever its outcome (LoadLimiter records every finished call).
        emulator.operating.charge(key, emulator.clock.now() - begin, emulator.clock.now())
        raise
    finished = emulator.clock.now()
    budget = emulator.operating.charge(key, finished - begin, finished)
    return result, finished - begin, budget


def _handler_params(method: Method, params: dict) -> dict:
    """The parameters a handler sees: auth and paging removed, keys upper-cased for im.*."""
    cleaned = {k: v for k, v in params.items() if k not in auth.AUTH_PARAMS}
    return upper_keys(cleaned) if method.upper_keys else cleaned


def _log_call(method: str, status: int, code: str, seconds: float) -> None:
    """One cheap line per call: `im.notify.personal.add => 400 USER_ID_EMPTY 1.2ms`."""
    if log.isEnabledFor(logging.INFO):
        suffix = f" {code}" if code else ""
        log.info("%s => %d%s %.1fms", method, status, suffix, seconds * 1000)
