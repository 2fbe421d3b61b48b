"""A lean HTTP/1.1 load generator: one asyncio loop, keep-alive connections, pre-built requests.

A thread per connection with `requests` spends more CPU per call than the server's cheapest
answers, and its threads queue for the GIL after a reply arrived, which shows up as server
latency. Here every connection is a coroutine that writes raw request bytes and reads the
answer by Content-Length, so the generator takes a small share of the machine's cores.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from urllib.parse import urlsplit

# A function of the request's index: (method, path with query, JSON body or None).
RequestFactory = Callable[[int], tuple[str, str, object]]


def encode(method: str, host: str, path: str, body: object = None) -> bytes:
    """One request as bytes, keep-alive."""
    data = b"" if body is None else json.dumps(body).encode()
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive",
            "Accept: application/json", f"Content-Length: {len(data)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split()[1])
    length, chunked, keep = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep = False
    if not chunked:
        return status, await reader.readexactly(length), keep
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body, keep
        body += chunk[:-2]


async def _run(url: str, factory: RequestFactory, total: int, connections: int,
               check: Callable[[int, bytes], None] | None, max_seconds: float | None) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    latencies: list[float] = []
    counter = iter(range(total))

    stop_at = time.perf_counter() + max_seconds if max_seconds else None

    async def connection() -> None:
        reader = writer = None
        try:
            for index in counter:
                if stop_at is not None and time.perf_counter() > stop_at and latencies:
                    break
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                method, path, body = factory(index)
                payload = encode(method, f"{host}:{port}", path, body)
                begin = time.perf_counter()
                writer.write(payload)
                status, data, keep = await _read_response(reader)
                latencies.append(time.perf_counter() - begin)
                if check is not None:
                    check(status, data)
                elif status != 200:
                    raise RuntimeError(f"{method} {path}: HTTP {status} {data[:200]!r}")
                if not keep:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    begin = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - begin
    return summary(latencies, elapsed)


def summary(latencies: list[float], elapsed: float) -> dict:
    """Requests per second, p50, p99 and mean in milliseconds."""
    ordered = sorted(latencies)
    return {"rps": len(ordered) / elapsed, "p50": statistics.median(ordered) * 1000,
            "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
            "mean": statistics.fmean(ordered) * 1000, "count": len(ordered)}


def run(url: str, factory: RequestFactory, total: int, connections: int,
        check: Callable[[int, bytes], None] | None = None,
        max_seconds: float | None = None) -> dict:
    """`total` requests over `connections` keep-alive connections to the server of `url`;
    with `max_seconds`, no new request starts after that time (slow calls stop early)."""
    return asyncio.run(_run(url, factory, total, connections, check, max_seconds))


def post_json(path: str, body: object) -> RequestFactory:
    """The same POST every time."""
    return lambda _index: ("POST", path, body)
