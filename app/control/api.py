"""The emulator's own endpoints, under the reserved prefix `/_emulator/` (never rate limited)."""

from __future__ import annotations

from b24emu.control.access import check_access
from b24emu.control.schemas import ControlError
from flask import Blueprint, current_app, jsonify

bp = Blueprint("control", __name__, url_prefix="/_emulator")
bp.before_request(check_access)


@bp.get("/health")
def health():
    """200 ready once the database is migrated and the fixtures are loaded."""
    emulator = current_app.extensions["b24emu"]
    return jsonify(status="ready", schema_version=emulator.database.schema_version())


@bp.errorhandler(ControlError)
def control_error(error: ControlError):
    """`{"error", "error_description"}` with the error's status."""
    return error.response()


# The endpoints attach themselves to `bp`.
from b24emu.control import clock, faults, journal, methods, notifications, openapi, portals  # noqa: E402,F401,I001
from b24emu.control import events, stubs  # noqa: E402,F401,I001
