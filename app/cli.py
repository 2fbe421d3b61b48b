"""The `b24emu` command.

`b24emu serve` runs the emulator under granian (`--detach`: in the background until ready, see
b24emu.detach; `b24emu stop` ends it). The other commands talk to a running emulator through its
control API (`--url`: its base URL, default $B24EMU_URL or http://127.0.0.1:8080; `--token`,
default $B24EMU_CONTROL_TOKEN): `seed`, `reset`, `portals`, `notifications`, `journal`,
`faults`, `clock`, `stubs`, `events` (`b24emu.events.cli`). `b24emu record` proxies a real portal
into a recording; `b24emu verify` replays a recording against the emulator. `b24emu notify` sends
a personal (or system) notification through the webhook URL (`--url` or $B24EMU_WEBHOOK) of any
Bitrix24-compatible portal, the emulator or a real one.

Exit codes: 0 done, 1 the server refused or could not be reached (one line on stderr:
`error: CODE: description`), 2 bad command-line input or settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from b24emu import urls
from b24emu.detach import DEFAULT_LOG_FILE, DEFAULT_PID_FILE, DEFAULT_WAIT, DetachError
from b24emu.events import cli as events_cli
from b24emu.settings import ConfigError, Settings
from b24emu.store.fixtures import FixtureError

log = logging.getLogger("b24emu")

DEFAULT_URL = "http://127.0.0.1:8080"
MESSAGE_WIDTH = 50
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds before each retry of a 503 in `notify`
_sleep = time.sleep


class UsageError(Exception):
    """Bad input on the command line (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The command line; every serve flag also has a B24EMU_* variable."""
    parser = argparse.ArgumentParser(prog="b24emu", description="Offline Bitrix24 REST emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator (granian, SQLite)")
    serve.add_argument("--host", help="listen address (B24EMU_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (B24EMU_PORT, default 8080)")
    serve.add_argument("--db", help="SQLite file (B24EMU_DB, default b24emu.sqlite3)")
    serve.add_argument("--fixtures", help="portal loaded into an empty database (B24EMU_FIXTURES)")
    serve.add_argument("--workers", type=int, help="worker processes (B24EMU_WORKERS, default 2)")
    serve.add_argument("--threads", type=int, help="threads per worker (B24EMU_THREADS)")
    serve.add_argument("--tls", action="store_const", const=1,
                       help="serve HTTPS with a local CA kept in B24EMU_TLS_DIR (B24EMU_TLS=yes)")
    detach = serve.add_argument_group("in the background (for CI scripts)")
    detach.add_argument("--detach", action="store_true",
                        help="return once the emulator answers ready; `b24emu stop` ends it")
    detach.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT, metavar="S",
                        help=f"seconds to wait for ready (default {DEFAULT_WAIT:g})")
    detach.add_argument("--pid-file", default=DEFAULT_PID_FILE,
                        help=f"where the server's pid is kept (default {DEFAULT_PID_FILE})")
    detach.add_argument("--log-file", default=DEFAULT_LOG_FILE,
                        help=f"the server's output (default {DEFAULT_LOG_FILE})")
    serve.set_defaults(run=serve_command)
    stop = commands.add_parser("stop", help="stop a server started with `serve --detach`")
    stop.add_argument("--pid-file", default=DEFAULT_PID_FILE,
                      help=f"the pid file `serve --detach` wrote (default {DEFAULT_PID_FILE})")
    stop.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT, metavar="S",
                      help=f"seconds to wait for it to exit (default {DEFAULT_WAIT:g})")
    stop.set_defaults(run=stop_command)
    _control_commands(commands)
    events_cli.add_commands(commands, _control_options())
    _notify_command(commands)
    _stub_commands(commands)
    return parser


def _control_options() -> argparse.ArgumentParser:
    """--url, --token, --portal of every command that uses the control API."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("emulator")
    # SUPPRESS: a value given before a nested subcommand is not overwritten by its default.
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help=f"the emulator's base URL (B24EMU_URL, default {DEFAULT_URL}); "
                            "not a webhook URL")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help="control token, when the emulator has one (B24EMU_CONTROL_TOKEN)")
    group.add_argument("--portal", default=argparse.SUPPRESS,
                       help="portal name (default: the one the address selects)")
    return options


def _control_commands(commands) -> None:
    control = _control_options()
    seed = commands.add_parser("seed", parents=[control],
                               help="load (or replace) a portal from a fixture file")
    seed.add_argument("file", help="fixture JSON file (the format of fixtures/default.json)")
    seed.set_defaults(run=seed_command)

    reset = commands.add_parser("reset", parents=[control],
                                help="forget notifications and journal (and more with all)")
    reset.add_argument("--scope", choices=("all", "data"), default="all",
                       help="data: notifications and journal; all (default): also faults, "
                            "limits and the portal reloaded from its fixture")
    reset.set_defaults(run=reset_command)

    portals = commands.add_parser("portals", parents=[control],
                                  help="portals, their users and webhook URLs")
    portals.add_argument("--json", action="store_true", help="print the JSON")
    portals.set_defaults(run=portals_command)

    notes = commands.add_parser("notifications", parents=[control],
                                help="stored notifications, newest first (a table)")
    notes.add_argument("--recipient", type=int, help="recipient user id")
    notes.add_argument("--sender", type=int, help="sender user id (0: system)")
    notes.add_argument("--tag", help="TAG as the client sent it")
    notes.add_argument("--sub-tag", help="SUB_TAG as the client sent it")
    notes.add_argument("--type", choices=("personal", "system"), help="notification type")
    read = notes.add_mutually_exclusive_group()
    read.add_argument("--unread", action="store_const", const=False, dest="read",
                      help="only unread ones")
    read.add_argument("--read", action="store_const", const=True, dest="read",
                      help="only read ones")
    notes.add_argument("--since", help="created at or after: unix seconds or ISO 8601")
    notes.add_argument("--text", help="message contains this text")
    notes.add_argument("--limit", type=int, default=20, help="how many (default 20, max 1000)")
    notes.add_argument("--json", action="store_true", help="print the full JSON of each")
    notes.set_defaults(run=notifications_command)

    journal = commands.add_parser("journal", parents=[control],
                                  help="REST calls the emulator answered, newest first")
    journal.add_argument("--method", help="REST method, e.g. im.notify.personal.add")
    journal.add_argument("--status", type=int, help="HTTP status, e.g. 400")
    journal.add_argument("--error", help="error code, e.g. USER_ID_EMPTY")
    journal.add_argument("--since", help="at or after: unix seconds or ISO 8601")
    journal.add_argument("--limit", type=int, default=20, help="how many (default 20, max 1000)")
    journal.add_argument("--json", action="store_true", help="print the full JSON of each")
    journal.set_defaults(run=journal_command)

    faults = commands.add_parser("faults", parents=[control],
                                 help="list, add or clear injected faults")
    faults.set_defaults(run=faults_command, action=None)
    actions = faults.add_subparsers(dest="action", metavar="{add,clear}")
    add = actions.add_parser("add", parents=[control], help="make a method fail or answer late")
    add.add_argument("method", help="REST method, or '*' for every method")
    add.add_argument("error", nargs="?", help="error code, e.g. QUERY_LIMIT_EXCEEDED")
    add.add_argument("--status", type=int, help="HTTP status (default: the code's real one)")
    add.add_argument("--description", help="error_description (default: the code's real one)")
    add.add_argument("--latency", type=float, help="seconds to wait before answering")
    add.add_argument("--times", type=int, help="fire for this many calls (default: until cleared)")
    add.add_argument("--probability", type=float, help="fire for this share of calls (0..1)")
    clear = actions.add_parser("clear", parents=[control], help="disarm one fault or all")
    clear.add_argument("id", nargs="?", type=int, help="fault id (default: every fault)")

    clock = commands.add_parser("clock", parents=[control],
                                help="show, freeze, move or release the emulator's clock")
    clock.add_argument("--set", dest="set_to", metavar="T",
                       help="jump to T (unix seconds or ISO 8601)")
    clock.add_argument("--advance", type=float, metavar="S", help="move S seconds (may be < 0)")
    freeze = clock.add_mutually_exclusive_group()
    freeze.add_argument("--freeze", action="store_const", const=True, dest="freeze",
                        help="stop the clock")
    freeze.add_argument("--unfreeze", action="store_const", const=False, dest="freeze",
                        help="let a frozen clock run on from where it stands")
    freeze.add_argument("--release", action="store_true",
                        help="back to real time (no offset, not frozen)")
    clock.set_defaults(run=clock_command)


def _notify_command(commands) -> None:
    notify = commands.add_parser(
        "notify", help="send a notification through any Bitrix24 webhook URL",
        description="POST im.notify.personal.add (or im.notify.system.add) as JSON to a webhook "
                    "URL of the emulator or of a real portal; prints the new notification's id.")
    notify.add_argument("--url", help="webhook URL (B24EMU_WEBHOOK), e.g. "
                                      f"{urls.WEBHOOK_EXAMPLE}")
    notify.add_argument("--user", required=True, type=int, help="recipient user id (USER_ID)")
    notify.add_argument("--text", required=True, help="MESSAGE (BB-code allowed)")
    notify.add_argument("--tag", help="TAG: replaces the recipient's earlier one with this tag")
    notify.add_argument("--sub-tag", help="SUB_TAG")
    notify.add_argument("--message-out", help="MESSAGE_OUT: text for e-mail and push")
    notify.add_argument("--blocks", help="ATTACH: a JSON file path, '-' for stdin, or inline "
                                         "JSON; a list of blocks or a full {\"BLOCKS\": [...]}")
    notify.add_argument("--system", action="store_true",
                        help="send im.notify.system.add (no sender) instead")
    notify.add_argument("--retries", type=int, default=3,
                        help="retries of a 503 QUERY_LIMIT_EXCEEDED, after 1, 2, 4... s "
                             "(default 3; 0: none)")
    notify.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    notify.set_defaults(run=notify_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from b24emu.testing.client import EmulatorError

    try:
        return args.run(args)
    except (ConfigError, FixtureError, UsageError, urls.UrlKindError) as error:
        print(f"b24emu: {error}", file=sys.stderr)
        return 2
    except DetachError as error:
        print(f"b24emu: {error}", file=sys.stderr)
        return 1
    except EmulatorError as error:
        print(f"error: {error.code}: {error.description}", file=sys.stderr)
        return 1


# --- control API commands ---------------------------------------------------------------------


def control_client(args: argparse.Namespace):
    """The control client for --url/--token/--portal (or their environment variables)."""
    from b24emu.testing.client import EmulatorClient

    url = emulator_url(args)
    token = getattr(args, "token", None) or os.environ.get("B24EMU_CONTROL_TOKEN") or None
    return EmulatorClient(url, token=token, portal=getattr(args, "portal", None))


def emulator_url(args: argparse.Namespace) -> str:
    """The emulator's base URL from --url, else B24EMU_URL, else the default; checked."""
    if getattr(args, "url", None):
        return urls.base_url(args.url, "--url")
    if os.environ.get("B24EMU_URL"):
        return urls.base_url(os.environ["B24EMU_URL"], "B24EMU_URL")
    return DEFAULT_URL


def webhook_url(args: argparse.Namespace) -> str:
    """The webhook URL from --url, else B24EMU_WEBHOOK; checked."""
    if args.url:
        return urls.webhook_url(args.url, "--url")
    if os.environ.get("B24EMU_WEBHOOK"):
        return urls.webhook_url(os.environ["B24EMU_WEBHOOK"], "B24EMU_WEBHOOK")
    raise UsageError(f"notify needs a webhook URL: --url or B24EMU_WEBHOOK, e.g. "
                     f"{urls.WEBHOOK_EXAMPLE}")


def seed_command(args: argparse.Namespace) -> int:
    """POST the fixture file to /_emulator/seed."""
    path = Path(args.file)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror or error}") from None
    except ValueError as error:
        raise UsageError(f"{path}: not valid JSON ({error})") from None
    done = control_client(args).seed(document)
    print(f"seeded portal {done['portal']!r} ({done['domain']}): {done['users']} users, "
          f"{done['webhooks']} webhooks, {done['apps']} apps")
    return 0


def reset_command(args: argparse.Namespace) -> int:
    """POST /_emulator/reset."""
    done = control_client(args).reset(args.scope)
    removed = ", ".join(f"{key} {value}" for key, value in sorted(done["removed"].items()))
    reloaded = "; portal reloaded from its fixture" if done.get("reloaded") else ""
    print(f"reset portal {done['portal']!r} ({args.scope}): removed {removed or 'nothing'}"
          f"{reloaded}")
    return 0


def portals_command(args: argparse.Namespace) -> int:
    """GET /_emulator/portals."""
    portals = control_client(args).portals()
    if args.json:
        print(json.dumps(portals, indent=2, ensure_ascii=False))
        return 0
    for portal in portals:
        print(f"portal {portal['name']!r} ({portal['domain']})")
        for user in portal["users"]:
            state = "" if user["active"] else " (inactive)"
            name = " ".join(part for part in (user["name"], user["last_name"]) if part)
            print(f"  user {user['id']}: {name or user['login'] or '-'}{state}")
        for hook in portal["webhooks"]:
            print(f"  webhook [{','.join(hook['scopes'])}]: {hook['url']}")
        for app in portal["apps"]:
            print(f"  app {app['client_id']} [{','.join(app['scopes'])}]")
    return 0


def notifications_command(args: argparse.Namespace) -> int:
    """GET /_emulator/notifications as a table."""
    filters = {"recipient": args.recipient, "sender": args.sender, "tag": args.tag,
               "sub_tag": args.sub_tag, "type": args.type, "read": args.read,
               "since": args.since, "text": args.text, "limit": args.limit}
    page = control_client(args).request("GET", "notifications", params=filters)
    items = page["items"]
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("no notifications")
        return 0
    rows = [[str(n["id"]), str(n["recipient_id"]), str(n["sender_id"]), n["type"],
             "yes" if n["read"] else "no", n["tag"] or "-", _short_time(n["created"]),
             _truncate(n["message"])] for n in items]
    print(_table(["ID", "TO", "FROM", "TYPE", "READ", "TAG", "CREATED", "MESSAGE"], rows))
    if page["total"] > len(items):
        print(f"({len(items)} of {page['total']}; --limit shows more)")
    return 0


def journal_command(args: argparse.Namespace) -> int:
    """GET /_emulator/journal as a table."""
    filters = {"method": args.method, "status": args.status, "error": args.error,
               "since": args.since, "limit": args.limit}
    page = control_client(args).request("GET", "journal", params=filters)
    items = page["items"]
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("no calls")
        return 0
    rows = [[str(e["id"]), _utc(e["at"]), e["method"] or e["path"] or "-", str(e["status"]),
             e["error"] or "-", e["auth_type"] or "-",
             "-" if e["user_id"] is None else str(e["user_id"]),
             f"{(e['duration'] or 0) * 1000:.1f}"] for e in items]
    print(_table(["ID", "AT (UTC)", "METHOD", "STATUS", "ERROR", "AUTH", "USER", "MS"], rows))
    if page["total"] > len(items):
        print(f"({len(items)} of {page['total']}; --limit shows more)")
    return 0


def faults_command(args: argparse.Namespace) -> int:
    """`faults` lists, `faults add` arms, `faults clear [ID]` disarms."""
    client = control_client(args)
    if args.action == "add":
        fault = client.add_fault(args.method, args.error, status=args.status,
                                 description=args.description, latency=args.latency,
                                 times=args.times, probability=args.probability)
        print(f"fault {fault['id']} armed: {_describe_fault(fault)}")
        return 0
    if args.action == "clear":
        if args.id is not None:
            client.delete_fault(args.id)
            print(f"fault {args.id} cleared")
        else:
            print(f"{client.clear_faults()} faults cleared")
        return 0
    faults = client.faults()
    if not faults:
        print("no faults")
        return 0
    for fault in faults:
        print(f"{fault['id']}: {_describe_fault(fault)}, hit {fault['hits']} times")
    return 0


def clock_command(args: argparse.Namespace) -> int:
    """Show the clock, or move it (set, advance, freeze/unfreeze), or release it."""
    client = control_client(args)
    moving = args.set_to is not None or args.advance is not None or args.freeze is not None
    if args.release and moving:
        raise UsageError("clock: --release cannot be combined with --set/--advance/--freeze")
    if args.release:
        state = client.release_clock()
    elif moving:
        state = client.move_clock(set=args.set_to, advance=args.advance, freeze=args.freeze)
    else:
        state = client.clock()
    if state["frozen"]:
        how = "frozen"
    elif state["offset"]:
        how = f"running, {state['offset']:+.0f} s from real time"
    else:
        how = "running, real time"
    print(f"{state['iso']} ({how}; unix {state['now']:.3f})")
    return 0


def _describe_fault(fault: dict) -> str:
    parts = []
    if fault["error"]:
        parts.append(f"{fault['status']} {fault['error']}")
    if fault["latency"]:
        parts.append(f"after {fault['latency']:g} s")
    times = "until cleared" if fault["remaining"] is None else f"{fault['remaining']} more"
    chance = f", {fault['probability']:.0%} of calls" if fault["probability"] < 1 else ""
    return f"{fault['method']} -> {' '.join(parts)} ({times}{chance})"


def _truncate(text: str, width: int = MESSAGE_WIDTH) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _short_time(iso_text: str) -> str:
    return iso_text[:19].replace("T", " ")


def _utc(unix: float | None) -> str:
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


# --- notify -----------------------------------------------------------------------------------


def notify_command(args: argparse.Namespace) -> int:
    """Send one notification through a webhook URL; print its id."""
    import requests

    hook = webhook_url(args)
    method = "im.notify.system.add" if args.system else "im.notify.personal.add"
    params: dict = {"USER_ID": args.user, "MESSAGE": args.text}
    if args.message_out is not None:
        params["MESSAGE_OUT"] = args.message_out
    if args.tag is not None:
        params["TAG"] = args.tag
    if args.sub_tag is not None:
        params["SUB_TAG"] = args.sub_tag
    if args.blocks is not None:
        params["ATTACH"] = _blocks(args.blocks)
    where = "{0.scheme}://{0.netloc}".format(urlsplit(hook))  # never print the secret code
    retries = max(0, args.retries)
    for attempt in range(retries + 1):
        try:
            response = requests.post(f"{hook}{method}.json", json=params, timeout=args.timeout)
        except requests.Timeout:
            print(f"error: {where} did not answer within {args.timeout:g} s", file=sys.stderr)
            return 1
        except requests.RequestException as error:
            from b24emu.testing.client import _reason

            print(f"error: cannot reach {where} ({_reason(error)})", file=sys.stderr)
            return 1
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or ("result" not in body and "error" not in body):
            print(f"error: HTTP {response.status_code} from {where}: not a Bitrix24 REST answer "
                  "(is the URL a webhook URL?)", file=sys.stderr)
            return 1
        if body.get("error") == "QUERY_LIMIT_EXCEEDED" and attempt < retries:
            _sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            continue
        break
    if "error" in body:
        description = body.get("error_description") or ""
        print(f"error: {body['error']}: {description}".rstrip(": ").rstrip(), file=sys.stderr)
        return 1
    result = body["result"]
    if result is False:
        print(f"error: the portal answered false: user {args.user} does not exist or is "
              "inactive", file=sys.stderr)
        return 1
    print(result)
    return 0


def _blocks(value: str):
    """--blocks: inline JSON, '-' (stdin) or a file; a list of blocks or a full ATTACH object."""
    text = value.strip()
    source = "--blocks"
    if text == "-":
        text = sys.stdin.read()
    elif not text.startswith(("[", "{")):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"--blocks: {value}: {error.strerror or error}") from None
        source = f"--blocks {value}"
    try:
        attach = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(attach, (list, dict)):
        raise UsageError(f"{source}: must be a list of blocks or an object with BLOCKS")
    return attach


# --- stubs, record, verify ----------------------------------------------------------------------


def _stub_commands(commands) -> None:
    control = _control_options()
    stubs = commands.add_parser("stubs", parents=[control],
                                help="list, add, clear or import stubs (answers for methods the "
                                     "emulator does not emulate)")
    stubs.set_defaults(run=stubs_command, action=None)
    actions = stubs.add_subparsers(dest="action", metavar="{add,list,clear,import}")
    add = actions.add_parser("add", parents=[control], help="answer a method with a stub")
    add.add_argument("method", nargs="?", help="REST method, e.g. crm.deal.get")
    add.add_argument("--file", help="a stub JSON document (or an array of them); '-' for stdin")
    add.add_argument("--params", help="JSON object: the parameters the stub matches")
    add.add_argument("--result", help="JSON: the result (any JSON value)")
    add.add_argument("--error", help="error code instead of a result")
    add.add_argument("--description", help="error_description")
    add.add_argument("--status", type=int, help="HTTP status of the error (default 400)")
    add.add_argument("--scope", help="scope the stub needs (default: the method's first part)")
    add.add_argument("--override", action="store_true",
                     help="answer even though the emulator has the method")
    add.add_argument("--latency", type=float, help="seconds to wait before answering")
    listing = actions.add_parser("list", parents=[control], help="the portal's stubs")
    listing.add_argument("--json", action="store_true", help="print the full JSON of each")
    clear = actions.add_parser("clear", parents=[control], help="remove one stub or all")
    clear.add_argument("id", nargs="?", type=int, help="stub id (default: every stub)")
    imports = actions.add_parser("import", parents=[control],
                                 help="stubs from a recording, for methods the emulator lacks")
    imports.add_argument("recording", help="a file written by `b24emu record`")

    record = commands.add_parser(
        "record", help="proxy to a real portal, writing every call to a recording",
        description="Serve a proxy: each /rest/ call is forwarded unchanged to the upstream "
                    "portal, its answer returned unchanged, and the pair written to --out with "
                    "every secret masked. Stop with Ctrl-C.")
    record.add_argument("--upstream", required=True,
                        help="webhook URL https://PORTAL/rest/USER/CODE/, or https://PORTAL/rest/ "
                             "with --upstream-token")
    record.add_argument("--upstream-token", help="OAuth access token sent upstream as `auth`")
    record.add_argument("--out", required=True, help="recording file to write")
    record.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    record.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    record.set_defaults(run=record_command)

    verify = commands.add_parser(
        "verify", help="replay a recording against the emulator; report shape differences",
        description="Replay each recorded call against the emulator with its own credentials "
                    "and compare the answers' shapes. Exit 1 on any difference.")
    verify.add_argument("recording", help="a file written by `b24emu record`")
    verify.add_argument("--url", default=None,
                        help=f"the emulator's address (B24EMU_URL, default {DEFAULT_URL})")
    verify.add_argument("--webhook", default="1/devtoken",
                        help="the emulator's webhook USER/CODE for webhook recordings "
                             "(default 1/devtoken)")
    verify.add_argument("--oauth-token", default="devaccesstoken",
                        help="the emulator's access token for OAuth recordings")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(run=verify_command)


def stubs_command(args: argparse.Namespace) -> int:
    """`stubs` / `stubs list`, `stubs add`, `stubs clear [ID]`, `stubs import FILE`."""
    client = control_client(args)
    if args.action == "add":
        stored = client.add_stubs(_stub_documents(args))
        for stub in stored:
            print(f"stub {stub['id']} added: {_describe_stub(stub)}")
        return 0
    if args.action == "clear":
        if args.id is not None:
            client.delete_stub(args.id)
            print(f"stub {args.id} removed")
        else:
            print(f"{client.clear_stubs()} stubs removed")
        return 0
    if args.action == "import":
        return _import_stubs(client, args.recording)
    stubs = client.stubs()
    if getattr(args, "json", False):
        print(json.dumps(stubs, indent=2, ensure_ascii=False))
        return 0
    if not stubs:
        print("no stubs")
        return 0
    for stub in stubs:
        print(f"{stub['id']}: {_describe_stub(stub)}, answered {stub['hits']} calls")
    return 0


def _stub_documents(args: argparse.Namespace) -> list:
    if args.file:
        text = sys.stdin.read() if args.file == "-" else _read_text(args.file)
        document = _json_option("--file", text)
        return document if isinstance(document, list) else [document]
    if not args.method:
        raise UsageError("stubs add: give a METHOD (or --file)")
    stub: dict = {"method": args.method}
    if args.params is not None:
        stub["params"] = _json_option("--params", args.params)
    if args.error is not None:
        stub["error"] = args.error
        for key, value in (("error_description", args.description), ("status", args.status)):
            if value is not None:
                stub[key] = value
    else:
        stub["result"] = _json_option("--result", args.result) if args.result is not None \
            else True
    for key, value in (("scope", args.scope), ("latency", args.latency)):
        if value is not None:
            stub[key] = value
    if args.override:
        stub["override"] = True
    return [stub]


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror or error}") from None


def _json_option(name: str, text: str):
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"{name}: not valid JSON ({error})") from None


def _describe_stub(stub: dict) -> str:
    params = f" {json.dumps(stub['params'], ensure_ascii=False)}" if stub["params"] else ""
    answers = stub.get("sequence") or [stub]
    shown = []
    for answer in answers:
        if "error" in answer:
            shown.append(f"{answer.get('status', 400)} {answer['error']}")
        else:
            shown.append(_truncate(json.dumps(answer["result"], ensure_ascii=False), 40))
    override = ", override" if stub["override"] else ""
    return f"{stub['method']}{params} -> {' then '.join(shown)} (scope {stub['scope'] or '-'}" \
           f"{override})"


def _import_stubs(client, path: str) -> int:
    from b24emu.record.recording import RecordingError, load
    from b24emu.stubs.importer import stubs_from_recording

    try:
        recording = load(path)
    except RecordingError as error:
        raise UsageError(str(error)) from None
    emulated = {item["name"] for item in client.request("GET", "methods")["items"]}
    stubs, skipped = stubs_from_recording(recording, emulated)
    for first in range(0, len(stubs), 1000):
        client.add_stubs(stubs[first:first + 1000])
    methods = len({stub["method"] for stub in stubs})
    print(f"imported {_plural(len(stubs), 'stub')} for {_plural(methods, 'method')} from {path} "
          f"({_plural(skipped, 'call')} of emulated methods skipped)")
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def record_command(args: argparse.Namespace) -> int:
    """Serve the recording proxy until Ctrl-C."""
    from b24emu.record.proxy import RecordingProxy, UpstreamError

    try:
        proxy = RecordingProxy(args.upstream, args.out, token=args.upstream_token)
    except UpstreamError as error:
        raise UsageError(str(error)) from None
    try:  # listen first: a busy port must not cost an existing --out file its calls
        proxy.bind(args.host, args.port)
    except OSError as error:
        raise UsageError(f"--port {args.port}: {error.strerror or error}; "
                         f"{args.out} left as it was") from None
    try:
        proxy.open()
    except OSError as error:
        proxy.stop()
        raise UsageError(f"--out {args.out}: {error.strerror or error}") from None
    print(f"b24emu record: http://{args.host}:{args.port}/rest/<method> -> "
          f"{proxy.recording['upstream']} ({proxy.auth}); writing {args.out}", flush=True)
    proxy.serve_forever()
    print(f"recorded {len(proxy.recording['calls'])} calls to {args.out}")
    return 0


def verify_command(args: argparse.Namespace) -> int:
    """Replay a recording against the emulator; exit 1 on any difference."""
    import requests
    from b24emu.record.recording import RecordingError, load
    from b24emu.verify.compare import Replayer, as_json, table, verify

    try:
        recording = load(args.recording)
    except RecordingError as error:
        raise UsageError(str(error)) from None
    url = args.url or os.environ.get("B24EMU_URL") or DEFAULT_URL
    replayer = Replayer(url, webhook=args.webhook, token=args.oauth_token)
    try:
        reports = verify(recording, replayer)
    except requests.RequestException as error:
        from b24emu.testing.client import _reason

        print(f"error: cannot reach the emulator at {url} ({_reason(error)})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_json(reports), indent=2, ensure_ascii=False))
    else:
        print(table(reports))
    return 1 if any(report.differences for report in reports) else 0


# --- serve ------------------------------------------------------------------------------------


def serve_command(args: argparse.Namespace) -> int:
    """Check the settings, migrate and seed once, print the credentials, then serve with granian
    workers (`--detach`: in a child process, returning once it is ready)."""
    from b24emu.context import Emulator
    from b24emu.preflight import serve_settings

    settings = serve_settings(
        host=args.host, port=args.port, db=args.db, fixtures=args.fixtures,
        workers=args.workers, threads=args.threads, tls=args.tls,
    )
    if args.detach:
        return detach_command(settings, args)
    emulator = Emulator.open(settings)
    tls_files = _tls_files(settings)
    print(banner(emulator, tls_files), flush=True)
    emulator.database.close()
    from b24emu.server import run_server

    run_server(settings, tls_files)
    return 0


def detach_command(settings: Settings, args: argparse.Namespace) -> int:
    """`serve --detach`: start in the background, print where it answers and how to stop it."""
    from b24emu.detach import start

    started = start(settings, args.pid_file, args.log_file, args.wait_timeout)
    print(f"b24emu: ready at {started.url} (pid {started.pid})\n"
          f"  pid file: {started.pid_file}   log: {started.log_file}\n"
          f"  stop it with: b24emu stop --pid-file {started.pid_file}", flush=True)
    return 0


def stop_command(args: argparse.Namespace) -> int:
    """`stop`: SIGTERM the detached server and wait for it to exit."""
    from b24emu.detach import stop

    pid = stop(args.pid_file, args.wait_timeout)
    print(f"b24emu: stopped pid {pid}")
    return 0


def _tls_files(settings: Settings):
    """The certificate files when HTTPS is on, generated on the first start."""
    if not settings.tls:
        return None
    from b24emu.tls import ensure_certificates

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
    lines.append(f"  inbox page: {base}/_emulator/ui/   control API: {base}/_emulator/openapi.json")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
