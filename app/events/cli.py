"""`b24emu events …`: fire events and look at their deliveries through the control API.

    b24emu events fire ONCRMDEALUPDATE --data '{"FIELDS": {"ID": 5}}' --wait
    b24emu events deliveries --status failed
    b24emu events handlers
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_commands(commands, control: argparse.ArgumentParser) -> None:
    """The `events` command and its actions (wired by `b24emu.cli`)."""
    events = commands.add_parser("events", parents=[control],
                                 help="fire events at the apps' handlers, see deliveries")
    events.set_defaults(run=events_command, action="deliveries", event=None, status=None,
                        limit=20, json=False)
    actions = events.add_subparsers(dest="action", metavar="{fire,deliveries,handlers}")
    fire = actions.add_parser("fire", parents=[control], help="fire an event")
    fire.add_argument("event", help="event name, e.g. ONCRMDEALUPDATE")
    fire.add_argument("--data", default="{}",
                      help="the event's data: inline JSON, a file, or '-' for stdin")
    who = fire.add_mutually_exclusive_group()
    who.add_argument("--user", type=int, help="who caused it (default: the first admin)")
    who.add_argument("--no-user", action="store_true",
                     help="nobody caused it (handlers get no tokens)")
    fire.add_argument("--wait", action="store_true",
                      help="wait for the deliveries and print how they ended")
    listing = actions.add_parser("deliveries", parents=[control],
                                 help="deliveries, newest first (a table)")
    listing.add_argument("--event", help="only this event")
    listing.add_argument("--status", choices=("queued", "sending", "delivered", "failed",
                                              "dropped"), help="only this status")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="print the full JSON of each")
    actions.add_parser("handlers", parents=[control], help="handlers bound with event.bind")


def events_command(args: argparse.Namespace) -> int:
    """Dispatch `events fire|deliveries|handlers`."""
    from b24emu.cli import control_client

    client = control_client(args)
    if args.action == "fire":
        return _fire(client, args)
    if args.action == "handlers":
        from b24emu.cli import _table

        rows = [[str(h["id"]), h["client_id"], h["event"],
                 "(offline)" if h["offline"] else h["handler"], str(h["auth_type"])]
                for h in client.event_handlers()]
        print(_table(["ID", "APP", "EVENT", "HANDLER", "USER"], rows) if rows else "no handlers")
        return 0
    return _deliveries(client, args)


def _fire(client, args: argparse.Namespace) -> int:
    user = None if args.no_user else (args.user if args.user is not None else ...)
    fired = client.fire_event(args.event, _data(args.data), user=user)
    ids = fired["deliveries"]
    print(f"{fired['event']}: {len(ids)} deliveries queued {ids}, "
          f"{fired['offline']} offline records")
    if args.wait and ids:
        failed = 0
        for row in client.wait_for_deliveries(ids):
            failed += row["status"] != "delivered"
            print(f"  {row['id']} {row['url']}: {row['status']} {_outcome(row)}")
        return 1 if failed else 0
    return 0


def _deliveries(client, args: argparse.Namespace) -> int:
    from b24emu.cli import _table, _truncate, _utc

    items = client.deliveries(event=args.event, status=args.status, limit=args.limit)
    if args.json or not items:
        print(json.dumps(items, indent=2, ensure_ascii=False) if args.json else "no deliveries")
        return 0
    rows = [[str(d["id"]), _utc(d["sent_at"] or d["created_at"]), d["event"], d["status"],
             _outcome(d), _truncate(d["url"], 40)] for d in items]
    print(_table(["ID", "AT (UTC)", "EVENT", "STATUS", "ANSWER", "URL"], rows))
    return 0


def _outcome(row: dict) -> str:
    if row["http_status"] is not None:
        return f"HTTP {row['http_status']}"
    return row["error"] or "-"


def _data(value: str):
    """--data: inline JSON, '-' (stdin) or a file."""
    from b24emu.cli import UsageError

    text = value.strip()
    if text == "-":
        text = sys.stdin.read()
    elif text and not text.startswith(("{", "[")):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"--data: {value}: {error.strerror or error}") from None
    try:
        return json.loads(text or "{}")
    except ValueError as error:
        raise UsageError(f"--data: not valid JSON ({error})") from None
