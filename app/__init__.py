"""b24emu: an offline, Bitrix24-compatible REST emulator.

`create_app()` wires the pieces: settings and clock, the database and its stores (`b24emu.store`),
the emulated `/rest/` surface (`b24emu.rest`), the methods (`b24emu.methods`) and the emulator's own
control endpoints (`b24emu.control`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from b24emu.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, clock=None, seed: bool = True) -> Flask:
    """Build the WSGI app: migrate the database and load fixtures into an empty one first."""
    from b24emu.context import Emulator
    from b24emu.control.api import bp as control_bp
    from b24emu.control.ui import bp as ui_bp
    from b24emu.oauth.routes import bp as oauth_bp
    from b24emu.rest.routes import AnyPathConverter
    from b24emu.rest.routes import bp as rest_bp
    from flask import Flask

    settings = settings or Settings.from_env()
    logging.getLogger("b24emu").setLevel(settings.log_level.upper())
    from b24emu.rest.redact import guard_logs

    # A logger filter covers its own records, not its children's: every logger that may see
    # a credential is named (Flask's app.logger is "b24emu"; werkzeug logs request lines).
    guard_logs("b24emu", "b24emu.rest", "b24emu.events", "b24emu.record", "werkzeug")
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
    from b24emu.rest.fast import RestFastPath

    app.wsgi_app = RestFastPath(app.wsgi_app, emulator)  # /rest/ without Flask's overhead
    if emulator.events.has_queued():  # deliveries left from before a restart
        emulator.deliveries.ensure_started()
    return app
