"""Requests sent on a fixed schedule, latency counted from when each was due.

An open loop: requests leave on time whether or not earlier ones came back, so a slow
server shows up as latency, not as less load. It speaks just enough HTTP/1.1 over asyncio
streams (keep-alive connections, Content-Length bodies) because a general-purpose client
spends more CPU per request than the server under test, and both share two cores here;
wrk, which is frugal, can only run closed loops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: What to send next: (kind for the report, method, path, JSON body or None).
Next = Callable[[int], tuple[str, str, str, bytes | None]]


@dataclass
class Result:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # ms, per kind
    errors: dict[str, int] = field(default_factory=dict)  # status >= 400 or no answer
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # of errors; 0: none
    late_ms: float = 0.0  # how far behind schedule the sender fell at worst
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (s due, ms) each


def _request(host: str, key: str, method: str, path: str, body: bytes | None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {key}"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = (line.partition(":") for line in lines[1:])
    length = next((int(v) for k, _, v in fields if k.lower() == "content-length"), 0)
    await reader.readexactly(length)
    return status


async def run(
    base: str,
    key: str,
    next_request: Next,
    rate: float,
    seconds: float,
    max_connections: int = 512,
    answered: Callable[[int, int], None] = lambda _i, _status: None,
) -> Result:
    """Send `rate` requests per second for `seconds`; `next_request(i)` says what the i-th is
    and `answered(i, status)` hears how it went (status 0: no answer)."""
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    result = Result()
    # A server that falls behind makes requests pile up; past this many at once they wait
    # for a connection (their latency still counts from when they were due).
    slots = asyncio.Semaphore(max_connections)

    async def one(i: int, due: float, kind: str, raw: bytes) -> None:
        async with slots:
            status = await send(due, kind, raw)
        if status == 0 or status >= 400:
            result.errors[kind] = result.errors.get(kind, 0) + 1
            seen = result.statuses.setdefault(kind, {})
            seen[status] = seen.get(status, 0) + 1
        answered(i, status)

    async def send(due: float, kind: str, raw: bytes) -> int:
        reused = bool(idle)
        conn = idle.pop() if reused else await asyncio.open_connection(host, port)
        try:
            try:
                status = await _exchange(*conn, raw)
            except (OSError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # the server closed this kept-alive connection while it was idle (as
                # HTTP/1.1 allows): send again on a new one, as any client would
                conn[1].close()
                conn = await asyncio.open_connection(host, port)
                status = await _exchange(*conn, raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn[1].close()
            return 0
        took = (time.perf_counter() - due) * 1000
        result.latencies.setdefault(kind, []).append(took)
        result.timeline.append((due - start, took))
        idle.append(conn)
        return status

    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (pause := due - time.perf_counter()) > 0:
            await asyncio.sleep(pause)
        else:
            result.late_ms = max(result.late_ms, -pause * 1000)
        kind, method, path, body = next_request(i)
        raw = _request(host, key, method, path, body)
        tasks.append(asyncio.create_task(one(i, due, kind, raw)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return result
