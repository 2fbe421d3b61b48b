"""Serving under gunicorn: several worker processes, each with its own SQLite connections."""

from __future__ import annotations

from b24emu.settings import Settings
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    """gunicorn driven from code, so `b24emu serve` needs no config file."""

    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from b24emu import create_app

        # Each worker opens the already migrated and seeded database after the fork.
        return create_app(self.settings, seed=False)


def gunicorn_options(settings: Settings) -> dict:
    """Worker model and timeouts: threads for concurrent requests, a graceful stop."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "post_worker_init": _post_worker_init,
    }


def _post_worker_init(worker) -> None:
    """In each worker, once its app is loaded: WAL checkpoints move to a background thread,
    and a stop signal ends the inbox page's open event streams at once."""
    from b24emu.control.ui import end_streams_on_exit

    worker.wsgi.extensions["b24emu"].database.start_checkpointer()
    end_streams_on_exit(worker)


def run_gunicorn(settings: Settings, tls_files=None) -> None:
    """Serve until stopped (SIGTERM or Ctrl-C lets in-flight requests finish)."""
    options = gunicorn_options(settings)
    if tls_files is not None:
        options.update(certfile=str(tls_files.cert), keyfile=str(tls_files.key))
    _Gunicorn(settings, options).run()
