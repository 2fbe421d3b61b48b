"""/_emulator/faults: make REST methods fail or slow down on purpose.

A fault is armed for one method (or "*" for every method) of one portal; it fires inside
`b24emu.rest.dispatch.execute` after the credentials and scope checks, so a batch counts once and
each of its commands once more. The answer is the portal's: `{"error", "error_description"}`
with the status, no `time`.

Defaults for the description and status of a known code come from `b24emu.rest.errors` (the one
place errors are defined): the docs' table of system errors (`SYSTEM_ERRORS`), what the emulator
raises itself for its other codes, and the spec for a few more (Part B 1.3, 4.3). The auth codes
keep the emulator's 401 (Part A 3). A fault's own `description` and `status` override both.
An unknown code without a `status` is answered 400: a `RestException` without a status is sent
as 400 (spec Part B 4.3); its description defaults to "".
"""

from __future__ import annotations

from b24emu.control.api import bp
from b24emu.control.schemas import (
    ControlError,
    FaultBody,
    PortalQuery,
    emulator,
    invalid,
    load_args,
    load_body,
    selected_portal,
)
from b24emu.rest import errors
from b24emu.store.control import ANY_METHOD
from flask import jsonify

UNKNOWN_CODE_STATUS = 400  # RestException without a status (spec Part B 4.3)

_RAISED = [
    errors.method_not_found(), errors.no_auth_found(), errors.invalid_credentials(),
    errors.invalid_token(), errors.expired_token(), errors.application_not_found(),
    errors.authorization_error(), errors.insufficient_scope("apauth"),
    errors.internal_server_error(), errors.query_limit_exceeded(),
    errors.operation_time_limit(), errors.batch_length_exceeded(),
    errors.batch_method_not_allowed(), errors.user_id_empty(), errors.message_empty(),
    errors.attach_oversize(), errors.attach_error(), errors.params_error(),
    errors.notify_id_error(), errors.notify_value_error(), errors.answer_text_error(),
    errors.last_id_and_last_type(), errors.last_id_string(), errors.search_text_error(),
]
# code -> (description, status): what the emulator itself raises, then the docs' system errors
# (_includes/system-errors.md), except the auth codes whose status Part A 3 decides (401).
KNOWN_CODES: dict[str, tuple[str, int]] = {e.code: (e.description, e.status) for e in _RAISED}
KNOWN_CODES.update({code: entry for code, entry in errors.SYSTEM_ERRORS.items()
                    if code not in errors.AUTH_STATUS_CODES})
KNOWN_CODES.update({
    "ERROR_CORE": ("SQL query error!", 500),                                  # B 4.3
    "WRONG_AUTH_TYPE": (
        "Access for this method not allowed by session authorization.", 403),  # B 1.3
})


def fault_json(row: dict) -> dict:
    """A fault as the API shows it."""
    return {"id": row["id"], "method": row["method"], "error": row["error"],
            "description": row["description"], "status": row["status"],
            "latency": row["latency"], "remaining": row["remaining"],
            "probability": row["probability"], "hits": row["hits"],
            "created_at": row["created_at"]}


@bp.get("/faults")
def list_faults():
    """The portal's armed faults, oldest first."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(items=[fault_json(row) for row in emu.control.faults(portal)])


@bp.post("/faults")
def add_fault():
    """Arm a fault; 201 with the fault."""
    emu = emulator()
    emu.sync()
    portal = selected_portal()
    load_args(PortalQuery())
    body = load_body(FaultBody(), required=True)
    method = body["method"].lower()
    if (method != ANY_METHOD and emu.registry.get(method) is None
            and method not in emu.stubs.methods(portal)):
        raise invalid("method", f"unknown method {method!r} (a fault never fires for it)")
    code = body["error"]
    description, status = body["description"], body["status"]
    if code:
        known = KNOWN_CODES.get(code)  # case-sensitive, as portals send them
        if description is None:
            description = known[0] if known else ""
        if status is None:
            status = known[1] if known else UNKNOWN_CODE_STATUS
    fault = emu.control.add_fault(
        portal, method=method, error=code, description=description or "", status=status,
        latency=body["latency"], times=body["times"], probability=body["probability"],
        now=emu.clock.now())
    response = jsonify(fault_json(fault))
    response.status_code = 201
    return response


@bp.delete("/faults")
def clear_faults():
    """Disarm every fault of the portal."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    return jsonify(deleted=emu.control.clear_faults(portal))


@bp.delete("/faults/<fault_id>")
def delete_fault(fault_id: str):
    """Disarm one fault (404 when there is none with that id)."""
    emu = emulator()
    portal = selected_portal()
    load_args(PortalQuery())
    if not (fault_id.isdigit() and len(fault_id) <= 18
            and emu.control.delete_fault(portal, int(fault_id))):
        raise ControlError(404, "not_found", f"No fault {fault_id[:40]} in {portal!r}")
    return jsonify(deleted=1)
