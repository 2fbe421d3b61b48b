"""The inbox page under `/_emulator/ui/` (placeholder until the page lands)."""

from __future__ import annotations

from flask import Blueprint

from app.control.access import check_access

bp = Blueprint("ui", __name__, url_prefix="/_emulator/ui")
bp.before_request(check_access)
