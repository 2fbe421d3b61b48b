"""/_emulator/clock: freeze, shift or jump the emulator's time for every worker.

Everything time-dependent reads this clock: the `time` envelope, token expiry, the request-rate
bucket and the operating budget. The state lives in the `control` table (`ClockState`).
"""

from __future__ import annotations

from datetime import datetime

from b24emu.control.api import bp
from b24emu.control.schemas import ClockBody, PortalQuery, emulator, load_args, load_body, to_unix
from b24emu.store.control import ClockState
from flask import jsonify


def clock_json(emu) -> dict:
    """The clock as the API shows it."""
    now = emu.clock.now()
    return {"now": now, "iso": datetime.fromtimestamp(now, emu.zone).isoformat(),
            "frozen": emu.clock.frozen, "offset": emu.clock.offset}


def next_state(state: ClockState, body: dict, base: float, zone) -> ClockState:
    """Apply `set`, then `advance`, then `freeze` to a clock state; `base` is the real time."""
    frozen_at, offset = state.frozen_at, state.offset
    if "set" in body:
        target = to_unix(body["set"], zone)
        if frozen_at is not None:
            frozen_at = target
        else:
            offset = target - base
    if "advance" in body:
        if frozen_at is not None:
            frozen_at += body["advance"]
        else:
            offset += body["advance"]
    if body.get("freeze") is True and frozen_at is None:
        frozen_at = base + offset
    elif body.get("freeze") is False and frozen_at is not None:
        offset, frozen_at = frozen_at - base, None  # runs on from the frozen instant
    return ClockState(frozen_at, offset)


@bp.get("/clock")
def get_clock():
    """The emulator's current time."""
    emu = emulator()
    load_args(PortalQuery())
    emu.sync()
    return jsonify(clock_json(emu))


@bp.post("/clock")
def move_clock():
    """`{"set": unix|ISO, "advance": seconds, "freeze": bool}`, applied in that order."""
    emu = emulator()
    load_args(PortalQuery())
    body = load_body(ClockBody())
    emu.sync()
    state = next_state(emu.control.clock_state(), body, emu.clock.base.now(), emu.zone)
    emu.control.set_clock(state)
    emu.sync()
    return jsonify(clock_json(emu))


@bp.delete("/clock")
def real_clock():
    """Back to real time: not frozen, no offset."""
    emu = emulator()
    load_args(PortalQuery())
    emu.control.set_clock(ClockState())
    emu.sync()
    return jsonify(clock_json(emu))
