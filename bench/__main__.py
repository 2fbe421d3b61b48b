"""`make bench`: throughput and latency of im.notify.personal.add over real HTTP, and the cost of
growth (the same calls with a million notifications stored).

Every figure is a ratio against a reference measured in the same run on the same machine; absolute
numbers on a shared machine mean little. The throughput reference stays fixed whatever server the
emulator uses: a bare Flask app answering a fixed JSON body under gunicorn sync workers
(2 x cores + 1). The emulator runs as `b24emu serve` ships (journal on, the standard rate preset
with a capacity that refuses nothing). Each load is run `--rounds` times, alternating servers, and
the median round is reported. The WAL phase adds notifications without pause and reports the
largest size of `<db>-wal` seen and how long it took to be emptied once the load stopped.
Usage: python -m bench [--quick] [--requests N] [--connections 1,10] [--rounds 3]
       [--wal-seconds 60] [--growth-rows N] [--phases throughput,wal,growth]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from b24emu.settings import Settings

from bench import growth, load

ROOT = Path(__file__).resolve().parents[1]
ADD_PATH = "/rest/1/devtoken/im.notify.personal.add.json"
ATTACH = [{"MESSAGE": "small attach"}, {"DELIMITER": {"SIZE": 200}}]
BODY = {"USER_ID": 2, "MESSAGE": "bench", "TAG": "bench", "ATTACH": ATTACH}
REPLACED_TAGS = 200   # the TAG add cycles over these tags: every measured call replaces one row
LIST_PATH = "/_emulator/notifications?recipient=2&tag=t-5&limit=50"
GROWTH_TARGET = 1.2
GROWTH_SECONDS = 15   # per growth measurement at most: a slow call is measured fewer times
GROWTH_ROUNDS = 10    # alternating chunks per growth measurement (each server gets one a round)
GROWTH_WARM_UP = 300  # calls each server answers before anything is measured


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(load.encode("GET", f"127.0.0.1:{port}", "/_emulator/health"))
            return sock.recv(12).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    """Start a server and wait until it answers."""
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},  # noqa: S603
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _answers(port):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def emulator(db: str, port: int, rate_limit: str, args, extra: dict | None = None
             ) -> subprocess.Popen:
    env = {"B24EMU_RATE_LIMIT": rate_limit, "B24EMU_RATE_CAPACITY": "1000000000",
           "B24EMU_LOG_LEVEL": args.log_level, **(extra or {})}
    return start([sys.executable, "-m", "b24emu", "serve", "--port", str(port), "--db", db,
                  "--fixtures", "fixtures/default.json", "--workers", str(args.workers),
                  "--threads", str(args.threads)], env, port)


def baseline(port: int, args) -> subprocess.Popen:
    workers = 2 * (os.cpu_count() or 1) + 1
    return start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                  "--workers", str(workers), "--worker-class", "sync", "--log-level", "warning",
                  "bench.baseline:app"], {}, port)


def measure(process: subprocess.Popen, url: str, factory, total: int, connections: list[int]):
    try:
        load.run(url, factory, max(20, total // 10), max(connections))  # warm-up
        return {c: load.run(url, factory, total, c) for c in connections}
    finally:
        stop(process)


# --- throughput and latency against the baseline ------------------------------------------------

EMULATOR, BASELINE = "emulator (b24emu serve)", "baseline (bare Flask, gunicorn sync)"


def throughput(args, connections: list[int]) -> dict:
    rounds: dict = {EMULATOR: [], BASELINE: []}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            port = free_port()
            process = emulator(f"{tmp}/round{index}.sqlite3", port, "standard", args)
            rounds[EMULATOR].append(measure(process, f"http://127.0.0.1:{port}",
                                            load.post_json(ADD_PATH, BODY), args.requests,
                                            connections))
            port = free_port()
            rounds[BASELINE].append(measure(baseline(port, args), f"http://127.0.0.1:{port}",
                                            load.post_json("/rest/x", BODY), args.requests,
                                            connections))
    return {name: {c: _median_round([r[c] for r in runs]) for c in connections}
            for name, runs in rounds.items()}


def _median_round(figures: list[dict]) -> dict:
    """The round with the median requests per second (its latencies come with it)."""
    return sorted(figures, key=lambda f: f["rps"])[len(figures) // 2]


def report_throughput(results: dict, connections: list[int], args) -> None:
    print(f"im.notify.personal.add (small ATTACH, TAG), {args.requests} requests per load,"
          f" median of {args.rounds} rounds; emulator: {args.workers} workers x {args.threads}"
          f" threads, journal on, rate limiter on; log level {args.log_level}")
    print(f"{'server':38} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, by_conn in results.items():
        for conn, figures in by_conn.items():
            print(f"{name:38} {conn:>5} {figures['rps']:>8.0f} {figures['p50']:>8.2f}"
                  f" {figures['p99']:>8.2f}")
    base, emu = results[BASELINE], results[EMULATOR]
    for conn in connections:
        ratio = emu[conn]["rps"] / base[conn]["rps"]
        flag = "" if ratio >= 1.0 else "  BELOW TARGET (1.0)"
        print(f"ratio emulator/baseline at {conn:>2} conns: {ratio:.2f}{flag}")
    if 10 in emu:
        p99 = emu[10]["p99"]
        print(f"emulator p99 at 10 conns: {p99:.1f} ms"
              f"{'' if p99 <= 20 else '  ABOVE TARGET (20 ms)'}")


# --- the WAL under a steady stream of adds ------------------------------------------------------

def wal_phase(args) -> dict:
    """Adds without pause for `--wal-seconds` at 10 connections; the WAL sampled every 20 ms."""
    import threading

    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/wal.sqlite3"
        port = free_port()
        process = emulator(db, port, "standard", args)
        wal = Path(f"{db}-wal")
        sizes: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                sizes.append(wal.stat().st_size if wal.exists() else 0)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            figures = load.run(f"http://127.0.0.1:{port}", _tag_add, 10**9, 10,
                               max_seconds=args.wal_seconds)
            done.set()
            sampler.join()
            ended = time.monotonic()
            while wal.exists() and wal.stat().st_size and time.monotonic() - ended < 30:
                time.sleep(0.05)
            emptied = time.monotonic() - ended
            left = wal.stat().st_size if wal.exists() else 0
            database = Path(db).stat().st_size
        finally:
            stop(process)
    return {"adds": figures["count"], "seconds": args.wal_seconds, "max": max(sizes),
            "left": left, "emptied": emptied, "db": database}


def report_wal(figures: dict) -> None:
    limit = Settings.wal_limit_bytes
    mb = 1024 * 1024
    print(f"\nWAL: {figures['adds']:,} adds in {figures['seconds']}s at 10 conns;"
          f" largest WAL {figures['max'] / mb:.1f} MB (bound {limit / mb:.0f} MB"
          f"{', met' if figures['max'] < limit else ', EXCEEDED'});"
          f" after the load: {figures['left']} bytes left after {figures['emptied']:.1f}s;"
          f" database {figures['db'] / mb:.1f} MB")


# --- growth: a full database against an empty one -----------------------------------------------

def _plain_add(_index: int):
    return "POST", ADD_PATH, {"USER_ID": 2, "MESSAGE": "growth", "ATTACH": ATTACH}


def _tag_add(index: int):
    body = {"USER_ID": 2, "MESSAGE": "growth", "TAG": f"t-{index % REPLACED_TAGS}",
            "ATTACH": ATTACH}
    return "POST", ADD_PATH, body


def _list(_index: int):
    return "GET", LIST_PATH, None


def _list_available(url: str) -> bool:
    statuses = []
    load.run(url, _list, 1, 1, check=lambda status, _body: statuses.append(status))
    return statuses == [200]


def _checked_list(status: int, body: bytes) -> None:
    if status != 200 or "items" not in json.loads(body):
        raise RuntimeError(f"control API list: HTTP {status} {body[:200]!r}")


def _pooled(chunks: list[dict]) -> dict:
    """One figure for several loads of one operation: mean over every call, worst p99."""
    count = sum(chunk["count"] for chunk in chunks)
    return {"count": count, "p99": max(chunk["p99"] for chunk in chunks),
            "mean": sum(chunk["mean"] * chunk["count"] for chunk in chunks) / count}


def growth_pair(empty_db: Path, full_db: Path, args) -> tuple[dict, dict]:
    """Time per call of each operation on both files, one connection, both servers running:
    the calls go to one and the other in `GROWTH_ROUNDS` alternating chunks, so a change in the
    machine's load during the phase weighs on both sides alike (measured one after the other,
    the ratio swung from 0.8 to 1.5 between runs)."""
    ports = {"empty": free_port(), "full": free_port()}
    processes = [emulator(str(empty_db), ports["empty"], "off", args)]
    try:
        processes.append(emulator(str(full_db), ports["full"], "off", args))
        urls = {side: f"http://127.0.0.1:{port}" for side, port in ports.items()}
        chunk = max(1, args.growth_requests // GROWTH_ROUNDS)
        budget = GROWTH_SECONDS / GROWTH_ROUNDS
        figures: dict = {"empty": {}, "full": {}}

        def alternate(name: str, factory, check=None) -> None:
            loads: dict = {"empty": [], "full": []}
            for index in range(GROWTH_ROUNDS):
                order = ("empty", "full") if index % 2 == 0 else ("full", "empty")
                for side in order:
                    loads[side].append(load.run(urls[side], factory, chunk, 1, check=check,
                                                max_seconds=budget))
            for side, chunks in loads.items():
                figures[side][name] = _pooled(chunks)

        for url in urls.values():
            load.run(url, _plain_add, GROWTH_WARM_UP, 1)  # warm-up: both caches, both workers
        alternate("plain add", _plain_add)
        for url in urls.values():
            load.run(url, _tag_add, REPLACED_TAGS, 1)  # every tag exists from here on
        alternate("add with TAG replacing one", _tag_add)
        if all(_list_available(url) for url in urls.values()):
            for url in urls.values():
                load.run(url, _list, 10, 1, check=_checked_list, max_seconds=GROWTH_SECONDS / 5)
            alternate("control API list (recipient+tag)", _list, _checked_list)
        else:
            for side in figures:
                figures[side]["control API list (recipient+tag)"] = None
    finally:
        for process in processes:
            stop(process)
    return figures["empty"], figures["full"]


def growth_phase(args) -> tuple[dict, dict, str]:
    with tempfile.TemporaryDirectory() as tmp:
        full, seconds, hit = growth.prepare(args.growth_rows, Path(tmp), args.growth_cache)
        how = (f"{args.growth_rows:,} notifications {'copied from the cache' if hit else 'built'}"
               f" in {seconds:.1f}s ({growth.cache_path(args.growth_rows, args.growth_cache)})")
        empty, filled = growth_pair(Path(tmp) / "empty.sqlite3", full, args)
    return empty, filled, how


def report_growth(empty: dict, filled: dict, how: str, args) -> None:
    print(f"\ngrowth: {how}")
    print(f"up to {args.growth_requests} calls or {GROWTH_SECONDS}s each, 1 connection, in"
          f" {GROWTH_ROUNDS} chunks alternating between the servers;"
          f" ratio = mean time per call full/empty"
          f" (target <= {GROWTH_TARGET})")
    print(f"{'operation':34} {'empty ms':>9} {'full ms':>9} {'p99 full':>9} {'calls':>6}"
          f" {'ratio':>6}")
    for name, small in empty.items():
        big = filled[name]
        if small is None or big is None:
            print(f"{name.replace(' (recipient+tag)', '')}: not available")
            continue
        ratio = big["mean"] / small["mean"]
        flag = "" if ratio <= GROWTH_TARGET else "  ABOVE TARGET"
        print(f"{name:34} {small['mean']:>9.2f} {big['mean']:>9.2f} {big['p99']:>9.2f}"
              f" {big['count']:>6} {ratio:>6.2f}{flag}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 500 requests, 100,000 stored notifications")
    parser.add_argument("--requests", type=int, default=None, help="per load (default 2000)")
    parser.add_argument("--connections", default="1,10")
    parser.add_argument("--growth-rows", type=int, default=None,
                        help="notifications in the full database (default 1,000,000)")
    parser.add_argument("--growth-requests", type=int, default=None,
                        help="calls per growth measurement (default 1000)")
    parser.add_argument("--growth-cache", default=None,
                        help="where prepared files are kept (default: <temp dir>/b24emu-bench)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per load (default 3)")
    parser.add_argument("--wal-seconds", type=float, default=None,
                        help="length of the steady load of the WAL phase (default 60)")
    parser.add_argument("--phases", default="throughput,wal,growth")
    parser.add_argument("--log-level", default="WARNING", help="B24EMU_LOG_LEVEL of the emulator")
    # What `make run` serves (the settings' defaults): measure the product as shipped.
    parser.add_argument("--workers", type=int, default=Settings.workers)
    parser.add_argument("--threads", type=int, default=Settings.threads)
    args = parser.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (500 if quick else 2000)
    args.rounds = args.rounds or (1 if quick else 3)
    args.wal_seconds = args.wal_seconds or (10 if quick else 60)
    args.growth_rows = args.growth_rows or (100_000 if quick else 1_000_000)
    args.growth_requests = args.growth_requests or (200 if quick else 1000)
    phases = {phase.strip() for phase in args.phases.split(",")}
    connections = [int(c) for c in args.connections.split(",")]
    begin = time.monotonic()
    if "throughput" in phases:
        report_throughput(throughput(args, connections), connections, args)
    if "wal" in phases:
        report_wal(wal_phase(args))
    if "growth" in phases:
        report_growth(*growth_phase(args), args)
    sys.stdout.flush()
    print(f"\nbench took {time.monotonic() - begin:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
