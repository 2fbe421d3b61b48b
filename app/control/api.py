"""The emulator's own endpoints, under the reserved prefix `/_emulator/` (never rate limited)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.control.access import check_access

bp = Blueprint("control", __name__, url_prefix="/_emulator")
bp.before_request(check_access)


@bp.get("/health")
def health():
    """200 ready once the database is migrated and the fixtures are loaded."""
    emulator = current_app.extensions["b24emu"]
    return jsonify(status="ready", schema_version=emulator.database.schema_version())
