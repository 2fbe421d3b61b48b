"""The `b24emu` command: `b24emu serve` runs the emulator under gunicorn."""

from __future__ import annotations

import argparse
import logging
import sys

from app.settings import ConfigError, Settings
from app.store.fixtures import FixtureError

log = logging.getLogger("b24emu")


def build_parser() -> argparse.ArgumentParser:
    """The command line; every serve flag also has a B24EMU_* variable."""
    parser = argparse.ArgumentParser(prog="b24emu", description="Offline Bitrix24 REST emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator (gunicorn, SQLite)")
    serve.add_argument("--host", help="listen address (B24EMU_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (B24EMU_PORT, default 8080)")
    serve.add_argument("--db", help="SQLite file (B24EMU_DB, default b24emu.sqlite3)")
    serve.add_argument("--fixtures", help="portal loaded into an empty database (B24EMU_FIXTURES)")
    serve.add_argument("--workers", type=int, help="worker processes (B24EMU_WORKERS, default 2)")
    serve.add_argument("--threads", type=int, help="threads per worker (B24EMU_THREADS)")
    serve.add_argument("--tls", action="store_const", const=1,
                       help="serve HTTPS with a local CA kept in B24EMU_TLS_DIR (B24EMU_TLS=1)")
    serve.set_defaults(run=serve_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.run(args)
    except (ConfigError, FixtureError) as error:
        print(f"b24emu: {error}", file=sys.stderr)
        return 2


def serve_command(args: argparse.Namespace) -> int:
    """Migrate and seed once, print the credentials, then serve with gunicorn workers."""
    from app.context import Emulator

    settings = Settings.from_env(
        host=args.host, port=args.port, db=args.db, fixtures=args.fixtures,
        workers=args.workers, threads=args.threads, tls=args.tls,
    )
    emulator = Emulator.open(settings)
    tls_files = _tls_files(settings)
    print(banner(emulator, tls_files), flush=True)
    emulator.database.close()
    from app.server import run_gunicorn

    run_gunicorn(settings, tls_files)
    return 0


def _tls_files(settings: Settings):
    """The certificate files when HTTPS is on, generated on the first start."""
    if not settings.tls:
        return None
    from app.tls import ensure_certificates

    names = tuple(name.strip() for name in settings.tls_names.split(",") if name.strip())
    return ensure_certificates(settings.tls_dir, names)


def banner(emulator, tls_files=None) -> str:
    """The ready-to-use URLs of the default portal."""
    settings = emulator.settings
    scheme = "https" if tls_files else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    lines = [f"b24emu: serving {base} (database {settings.db})"]
    for hook in emulator.portals.webhooks("default"):
        scopes = ",".join(hook["scopes"])
        lines.append(f"  webhook of user {hook['user_id']} [{scopes}]: "
                     f"{base}/rest/{hook['user_id']}/{hook['code']}/")
    cacert = f"--cacert {tls_files.ca} " if tls_files else ""
    lines.append(f"  try: curl {cacert}'{base}/rest/1/devtoken/im.notify.personal.add.json"
                 "?USER_ID=2&MESSAGE=hi'")
    if tls_files:
        lines.append(f"  trust the CA: REQUESTS_CA_BUNDLE={tls_files.ca} (Python), "
                     f"NODE_EXTRA_CA_CERTS={tls_files.ca} (Node)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
