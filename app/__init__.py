"""b24emu: an offline, Bitrix24-compatible REST emulator.

`create_app()` wires the pieces: settings and clock, the database and its stores (`app.store`),
the emulated `/rest/` surface (`app.rest`), the methods (`app.methods`) and the emulator's own
control endpoints (`app.control`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, clock=None, seed: bool = True) -> Flask:
    """Build the WSGI app: migrate the database and load fixtures into an empty one first."""
    from flask import Flask

    from app.context import Emulator
    from app.control.api import bp as control_bp
    from app.control.ui import bp as ui_bp
    from app.oauth.routes import bp as oauth_bp
    from app.rest.routes import AnyPathConverter
    from app.rest.routes import bp as rest_bp

    settings = settings or Settings.from_env()
    logging.getLogger("b24emu").setLevel(settings.log_level.upper())
    emulator = Emulator.open(settings, clock, seed=seed)
    app = Flask(__name__)
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["anypath"] = AnyPathConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["b24emu"] = emulator
    app.register_blueprint(rest_bp)
    app.register_blueprint(control_bp)
    app.register_blueprint(ui_bp)
    app.register_blueprint(oauth_bp)
    return app
