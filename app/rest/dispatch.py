"""One REST call from decoded request to envelope: method lookup, auth, scope, handler.

The order is the portal's (B 1.3): an unknown method is 404 before credentials are looked at;
bad credentials are 401 before any handler runs. `execute` is shared with `batch`.
"""

from __future__ import annotations

import logging
import secrets
import time as walltime
from dataclasses import dataclass

from b24emu.clock import request_sleep_budget, sleep_latency
from b24emu.methods.registry import Call, Caller, Method, upper_keys
from b24emu.rest import auth, envelope, errors, redact
from b24emu.rest.errors import BitrixError
from b24emu.store.control import PARAMS_LIMIT, capped_json
from b24emu.store.limits import IGNORED_METHODS
from b24emu.stubs import answer as stubs

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
    http_method: str = "POST"
    path: str = ""


def handle(emulator, request: RestRequest) -> tuple[bytes, int, dict]:
    """Answer one REST request: bytes, status and headers. Every answer is journaled.

    The method's writes, its journal row and its operating-budget charge are one unit of work:
    one write transaction, committed before the answer is returned.
    """
    snapshot = emulator.sync()
    wall_start = walltime.perf_counter()
    started = emulator.clock.now()
    request_id = secrets.token_hex(8)
    method = stubs.resolve(emulator, request.portal, request.method, request.params,
                           stubs_stored=snapshot.stubs_stored)
    stub_id = method.stub_id if method else None
    caller = None
    journal = _JournalDraft(request, request_id, started, wall_start, stub_id)
    limiter = emulator.rate_limiter
    # A call whose writes join the unit is counted in the unit's own transaction (see
    # RateLimiter.fits): one write transaction per call instead of two.
    counted_late = limiter is not None and method is not None and _joins_unit(method)
    database = emulator.database

    def record(status: int, code: str) -> None:
        # A call counted late journals inside its unit's transaction too, so a late refusal
        # (database.abandon) takes its row back with everything else.
        if counted_late:
            with database.joined():
                journal.record(emulator, caller, status, code)
        else:
            journal.record(emulator, caller, status, code)

    def counted() -> bool:
        with database.joined():
            return limiter.admit(request.portal, request.client_ip, started)

    with request_sleep_budget(), database.unit():
        try:
            if counted_late:
                if not limiter.fits(request.portal, request.client_ip, started):
                    counted_late = False  # refused: a refusal adds nothing to the bucket
                    raise errors.query_limit_exceeded()
            else:
                _admit(emulator, request, started)
            if method is None:
                raise errors.method_not_found()
            caller = auth.authenticate(
                emulator.portals, request.portal, aplogin=request.aplogin, ap=request.ap,
                bearer=request.bearer, params=request.params, now=started,
            )
            result, processing, budget = execute(
                emulator, method, request.params, caller, started, request_id=request_id,
                faults_armed=snapshot.faults_armed, joined=_joins_unit(method))
        except BitrixError as error:
            failed = error
            seconds = emulator.clock.now() - started
            record(error.status, error.code)
        except Exception:
            record(500, "INTERNAL_SERVER_ERROR")
            if counted_late:
                counted()
            raise
        else:
            failed = None
            finished = emulator.clock.now()
            record(200, "")
        if counted_late and not counted():
            # Another worker filled the bucket since `fits`: undone and refused, as if the
            # bucket had been full when the call came in.
            database.abandon()
            counted_late = False
            failed = errors.query_limit_exceeded()
            seconds = emulator.clock.now() - started
            record(failed.status, failed.code)
    # Logged and rendered after the unit has committed: no write lock is held meanwhile.
    if failed is not None:
        _log_call(request.method, failed.status, failed.code, seconds)
        return envelope.error_response(failed, request.transport)
    _log_call(method.name, 200, "", finished - started)
    time = envelope.time_object(
        start=started, finish=finished, processing=processing, zone=emulator.zone,
        operating=budget.operating, operating_reset_at=budget.reset_at,
    )
    return envelope.render(envelope.success_body(result, time), 200, request.transport)


def _joins_unit(method: Method) -> bool:
    """Whether a method's writes may wait for the end of the call to be committed: not batch
    (its calls commit one by one, as the portal's do) and not a stub (an event it fires wakes
    the delivery threads, which must find the delivery committed)."""
    return method.name != "batch" and method.stub_id is None


def _admit(emulator, request: RestRequest, now: float) -> None:
    """The portal's front door: the leaky bucket refuses before anything else (B 5.1)."""
    limiter = emulator.rate_limiter
    if limiter is not None and not limiter.admit(request.portal, request.client_ip, now):
        raise errors.query_limit_exceeded()


def execute(emulator, method: Method, params: dict, caller: Caller, started: float, *,
            request_id: str = "", faults_armed: bool = False, joined: bool = False):
    """Run a method for a caller: (result, processing seconds, operating budget).

    With `joined`, the handler's writes join the request's unit of work (see `handle`).
    """
    auth.check_scope(caller, method)
    if faults_armed:
        _inject_fault(emulator, caller.portal, method.name)
    key = (caller.portal, caller.auth_type, caller.credential, method.name)
    operating = emulator.operating
    live = operating.live(key, started) if method.name not in IGNORED_METHODS else None
    if operating.blocked(key, started, live):
        raise errors.operation_time_limit()
    call = Call(
        method=method.name,
        params=_handler_params(method, params),
        caller=caller,
        emulator=emulator,
        started_at=started,
        start=params.get("start"),
        request_id=request_id,
        faults_armed=faults_armed,
    )
    begin = emulator.clock.now()
    try:
        if joined:
            with emulator.database.joined():
                result = method.handler(call)
        else:
            result = method.handler(call)
    except BitrixError:
        # A run is billed whatever its outcome (LoadLimiter records every finished call).
        now = emulator.clock.now()
        operating.charge(key, now - begin, now, live)
        raise
    finished = emulator.clock.now()
    budget = operating.charge(key, finished - begin, finished, live)
    return result, finished - begin, budget


def _inject_fault(emulator, portal: str, method: str) -> None:
    """A fault armed through the control API: its latency, then its error (if it has one)."""
    fault = emulator.control.take_fault(portal, method)
    if fault is None:
        return
    if fault["latency"]:
        sleep_latency(fault["latency"])  # a slow portal is slow in real time (capped per request)
    if fault["error"]:
        raise errors.emulated_fault(fault["error"], fault["description"] or "",
                                    fault["status"] or 400)


class _JournalDraft:
    """A call's journal row, its masked parts rendered before the call runs (so that no lock is
    held while they are) and written, with the outcome, inside the call's unit of work."""

    def __init__(self, request: RestRequest, request_id: str, started: float,
                 wall_start: float, stub_id: int | None):
        secrets, params = redact.journal_params(request.params, request.ap, request.bearer)
        self.wall_start = wall_start
        self.row = {
            "portal": request.portal, "request_id": request_id, "at": started,
            "http_method": request.http_method, "path": redact.path(request.path, secrets),
            "method": request.method, "client_ip": request.client_ip,
            "params": params, "stub_id": stub_id,
        }
        self.params_json = capped_json(self.row["params"], PARAMS_LIMIT)

    def record(self, emulator, caller: Caller | None, status: int, code: str) -> None:
        """One journal entry per REST request, secrets masked (read via /_emulator/journal)."""
        emulator.control.record({
            **self.row, "auth_type": caller.auth_type if caller else None,
            "credential": caller.credential if caller else None,
            "user_id": caller.user_id if caller else None,
            "status": status, "error": code or None,
            "duration": walltime.perf_counter() - self.wall_start,
        }, params_json=self.params_json)


def _handler_params(method: Method, params: dict) -> dict:
    """The parameters a handler sees: auth and paging removed, keys upper-cased for im.*."""
    cleaned = {k: v for k, v in params.items() if k not in auth.AUTH_PARAMS}
    return upper_keys(cleaned) if method.upper_keys else cleaned


def _log_call(method: str, status: int, code: str, seconds: float) -> None:
    """One cheap line per call: `im.notify.personal.add => 400 USER_ID_EMPTY 1.2ms`."""
    if log.isEnabledFor(logging.INFO):
        suffix = f" {code}" if code else ""
        log.info("%s => %d%s %.1fms", method, status, suffix, seconds * 1000)
