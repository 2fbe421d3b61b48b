"""/_emulator/stubs: answers for REST methods the emulator does not emulate (b24emu.stubs).

`POST` takes one stub object, or a JSON array of them (stored all or none); `GET` lists the
portal's stubs oldest first; `DELETE /stubs/<id>` removes one, `DELETE /stubs` every one.
"""

from __future__ import annotations

from b24emu.control.api import bp
from b24emu.control.schemas import (
    ControlError,
    PortalQuery,
    emulator,
    flatten,
    invalid,
    load_args,
    selected_portal,
)
from b24emu.stubs.schema import ANSWER_FIELDS, load_stub
from b24emu.stubs.store import TooManyStubs
from flask import jsonify, request
from marshmallow import ValidationError

MAX_PER_REQUEST = 1000


def stub_json(stub: dict) -> dict:
    """A stored stub as the API shows it; the same document can be posted again."""
    shown = {key: stub[key] for key in ("id", "method", "params", "scope", "override",
                                        "latency", "events", "hits", "source", "created_at")}
    answers = stub["answers"]
    if len(answers) == 1 and "times" not in answers[0]:
        shown.update({key: answers[0][key] for key in ANSWER_FIELDS if key in answers[0]})
    else:
        shown["sequence"] = answers
    return shown


def _documents() -> tuple[list, bool]:
    """The posted stubs, and whether they came as an array."""
    raw = request.get_data(cache=True)
    data = request.get_json(force=True, silent=True) if raw.strip() else None
    if data is None:
        raise invalid("body", "a JSON stub object (or an array of them) is required")
    if isinstance(data, dict):
        return [data], False
    if isinstance(data, list) and 0 < len(data) <= MAX_PER_REQUEST:
        return data, True
    raise invalid("body", f"must be a stub object or an array of 1..{MAX_PER_REQUEST} stubs")


@bp.post("/stubs")
def add_stubs():
    """Store one stub (201 with it) or an array of stubs (201 with `items`)."""
    emu = emulator()
    emu.sync()
    portal = selected_portal()
    load_args(PortalQuery())
    documents, many = _documents()
    stubs = []
    for index, document in enumerate(documents):
        try:
            stubs.append(load_stub(document))
        except ValidationError as error:
            prefix = f"[{index}]" if many else ""
            raise ControlError(400, "invalid_parameter",
                               "; ".join(flatten(error.messages, prefix))) from None
    try:
        stored = emu.stubs.add(portal, stubs, emu.clock.now())
    except TooManyStubs as error:
        raise ControlError(400, "too_many_stubs", str(error)) from None
    if many:
        response = jsonify(items=[stub_json(stub) for stub in stored])
    else:
        response = jsonify(stub_json(stored[0]))
    response.status_code = 201
    return response


@bp.get("/stubs")
def list_stubs():
    """The portal's stubs, oldest first, with how many calls each answered."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(items=[stub_json(stub) for stub in emu.stubs.all(portal)])


@bp.delete("/stubs")
def clear_stubs():
    """Remove every stub of the portal (its fixture's too, until the next reset)."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(deleted=emu.stubs.clear(portal))


@bp.delete("/stubs/<stub_id>")
def delete_stub(stub_id: str):
    """Remove one stub (404 when there is none with that id)."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    if not (stub_id.isdigit() and len(stub_id) <= 18 and emu.stubs.delete(portal, int(stub_id))):
        raise ControlError(404, "not_found", f"No stub {stub_id[:40]} in {portal!r}")
    return jsonify(deleted=1)
