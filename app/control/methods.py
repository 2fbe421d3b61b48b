"""/_emulator/methods: the REST methods this emulator answers, read from the one registry."""

from __future__ import annotations

from b24emu.control.api import bp
from b24emu.control.schemas import emulator
from flask import jsonify


@bp.get("/methods")
def list_methods():
    """Every registered method: name, scope, whether `methods` lists it, its parameters."""
    items = [{"name": entry.name, "scope": entry.scope, "private": entry.private,
              "batchable": entry.batchable, "params": list(entry.params),
              "summary": entry.doc}
             for entry in emulator().registry.all()]
    return jsonify(items=items)
