"""The cost of growth: the same calls on a database holding many notifications vs an empty one.

`prepare` builds a SQLite file the emulator opens as it is: the emulator migrates and seeds it,
then rows shaped like the ones `im.notify.*.add` stores are bulk-inserted with executemany.
The file is cached in the temp directory, keyed by row count and schema, so the next run copies
it instead of building it again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from b24emu.store import schema
from b24emu.store.db import PAGE_SIZE

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = "fixtures/default.json"
# The stored tag prefix of the default webhook (no CLIENT_ID): md5("")[:5].
WEBHOOK_KEY = hashlib.md5(b"").hexdigest()[:5]
APP_KEYS = (WEBHOOK_KEY, "7c3a1", "e09f2", "b5d4e")
TAGGED_PERCENT = 70   # rows with a TAG; a tag is unique per (recipient, app key), as add keeps it
SUB_TAGGED_PERCENT = 40
COLUMNS = ("portal", "recipient_id", "sender_id", "notify_type", "module", "event", "message",
           "message_out", "notify_tag", "notify_sub_tag", "attach", "created_at", "is_read",
           "read_at", "method", "auth_type", "credential", "request_id")
CHUNK = 50_000


def schema_key() -> str:
    """Changes whenever a migration or the generated rows change (then the cache is rebuilt)."""
    source = Path(schema.__file__).read_bytes() + Path(__file__).read_bytes()
    return (f"v{len(schema.MIGRATIONS)}-p{PAGE_SIZE}"
            f"-{hashlib.sha256(source).hexdigest()[:10]}")


def cache_path(rows: int, directory: str | None = None) -> Path:
    base = Path(directory or os.environ.get("B24EMU_BENCH_CACHE")
                or Path(tempfile.gettempdir()) / "b24emu-bench")
    return base / f"growth-{rows}-{schema_key()}.sqlite3"


def rows_for(users: list[int], total: int, now: float, seed: int = 7):
    """`total` notification rows spread over `users`, four app keys, varied tags and texts."""
    rng = random.Random(seed)
    per_cycle = len(users) * len(APP_KEYS)
    sender_pool = users + [0]
    for index in range(total):
        recipient = users[index % len(users)]
        key = APP_KEYS[(index // len(users)) % len(APP_KEYS)]
        serial = index // per_cycle
        tagged = index % 100 < TAGGED_PERCENT
        sub_tagged = (index * 7) % 100 < SUB_TAGGED_PERCENT
        sender = sender_pool[index % len(sender_pool)]
        created = now - (total - index) * 7.5
        read = rng.random() < 0.5
        attach = (json.dumps([{"MESSAGE": f"build {index}"}, {"DELIMITER": {"SIZE": 200}}])
                  if index % 5 == 0 else None)
        yield ("default", recipient, sender, 4 if sender == 0 else 2, "rest", "rest_notify",
               f"Order {index} changed state to {rng.choice(('new', 'paid', 'shipped'))}",
               "", f"MP|{key}|t-{serial}" if tagged else "",
               f"MP|{key}|s-{index % 997}" if sub_tagged else "", attach, created,
               1 if read else 0, created + 60 if read else None,
               "im.notify.system.add" if sender == 0 else "im.notify.personal.add",
               "webhook", "1", rng.getrandbits(64).to_bytes(8, "big").hex())


def build(path: Path, total: int) -> None:
    """Migrate and seed `path` through the emulator, then insert `total` notifications."""
    from b24emu.context import Emulator
    from b24emu.settings import Settings

    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    emulator = Emulator.open(Settings(db=str(path), fixtures=str(ROOT / FIXTURES)))
    emulator.database.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        users = [row[0] for row in conn.execute(
            "SELECT id FROM users WHERE portal = 'default' AND active = 1 ORDER BY id")]
        sql = (f"INSERT INTO notifications ({', '.join(COLUMNS)})"  # noqa: S608
               f" VALUES ({', '.join('?' for _ in COLUMNS)})")
        generator = rows_for(users, total, now=time.time())
        conn.execute("BEGIN")
        while True:
            chunk = list(itertools.islice(generator, CHUNK))
            if not chunk:
                break
            conn.executemany(sql, chunk)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def prepare(rows: int, workdir: Path, cache_dir: str | None = None) -> tuple[Path, float, bool]:
    """A private copy of the prepared file in `workdir`: (path, seconds taken, from cache)."""
    begin = time.perf_counter()
    cached = cache_path(rows, cache_dir)
    hit = cached.exists()
    if not hit:
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        build(partial, rows)
        os.replace(partial, cached)
    target = workdir / "full.sqlite3"
    shutil.copyfile(cached, target)
    return target, time.perf_counter() - begin, hit


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM notifications").fetchone()[0]
