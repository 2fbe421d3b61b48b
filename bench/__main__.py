"""`make bench`: throughput and latency of im.notify.personal.add over real HTTP.

Every figure is a ratio against a baseline measured in the same run on the same machine (a bare
Flask app under the same gunicorn settings); absolute numbers on a shared machine mean little.
Usage: python -m bench [--requests N] [--connections 1,10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BODY = {"USER_ID": 2, "MESSAGE": "bench", "TAG": "bench",
        "ATTACH": [{"MESSAGE": "small attach"}, {"DELIMITER": {"SIZE": 200}}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    """Start a server and wait until it answers."""
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},  # noqa: S603
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


def emulator(db: str, port: int, rate_limit: str) -> subprocess.Popen:
    env = {"B24EMU_RATE_LIMIT": rate_limit, "B24EMU_RATE_CAPACITY": "1000000000",
           "B24EMU_LOG_LEVEL": "WARNING"}
    return start([sys.executable, "-m", "app", "serve", "--port", str(port), "--db", db,
                  "--fixtures", "fixtures/default.json", "--workers", "2", "--threads", "8"],
                 env, port)


def baseline(port: int) -> subprocess.Popen:
    return start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                  "--workers", "2", "--threads", "8", "--worker-class", "gthread",
                  "--log-level", "warning", "bench.baseline:app"], {}, port)


def load(url: str, total: int, connections: int) -> dict:
    """`total` POSTs over `connections` keep-alive connections: rps, p50 and p99 in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_worker = total // connections

    def worker():
        session = requests.Session()
        mine = []
        for _ in range(per_worker):
            begin = time.perf_counter()
            reply = session.post(url, json=BODY, timeout=30)
            mine.append(time.perf_counter() - begin)
            if reply.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {reply.status_code} {reply.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    latencies.sort()
    return {"rps": len(latencies) / elapsed,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def measure(name: str, process: subprocess.Popen, url: str, total: int, connections: list[int]):
    try:
        load(url, max(20, total // 10), max(connections))  # warm-up
        return {c: load(url, total, c) for c in connections}
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", default="1,10")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rate in (("emulator, limiter off", "off"), ("emulator, limiter on", "standard")):
            port = free_port()
            process = emulator(f"{tmp}/{rate}.sqlite3", port, rate)
            url = f"http://127.0.0.1:{port}/rest/1/devtoken/im.notify.personal.add.json"
            results[name] = measure(name, process, url, args.requests, connections)
        port = free_port()
        results["baseline (bare Flask)"] = measure(
            "baseline", baseline(port), f"http://127.0.0.1:{port}/rest/x", args.requests,
            connections)
    report(results, connections, args.requests)
    return 0


def report(results: dict, connections: list[int], total: int) -> None:
    print(f"im.notify.personal.add (small ATTACH, TAG), {total} requests, gunicorn 2x8 gthread")
    print(f"{'server':26} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, by_conn in results.items():
        for conn, figures in by_conn.items():
            print(f"{name:26} {conn:>5} {figures['rps']:>8.0f} {figures['p50']:>8.2f}"
                  f" {figures['p99']:>8.2f}")
    base, off = results["baseline (bare Flask)"], results["emulator, limiter off"]
    on = results["emulator, limiter on"]
    for conn in connections:
        emulator_ratio = off[conn]["rps"] / base[conn]["rps"]
        limiter_ratio = on[conn]["rps"] / off[conn]["rps"]
        print(f"ratio emulator/baseline at {conn:>2} conns: {emulator_ratio:.2f}"
              f"   limiter on/off: {limiter_ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
