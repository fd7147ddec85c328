"""A cheap HTTP/1.1 load generator: keep-alive connections on raw asyncio streams, spread over
worker processes, so the client costs far less CPU than the server it measures (this machine
has two cores and both sides share them)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Builds the request for the n-th call of one connection: (method, path, headers, body).
RequestFactory = Callable[[int, int], tuple[str, str, dict[str, str], bytes]]


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def figure(self, name: str, concurrency: int, **extra: object) -> dict[str, object]:
        return {
            "name": name,
            "value": round(self.rate, 1),
            "unit": "req/s",
            "concurrency": concurrency,
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "errors": self.errors,
            "requests": self.requests,
            **extra,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _connection(
    url: str, make: RequestFactory, conn_no: int, deadline: float, out: Result
) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    n = 0
    try:
        while time.perf_counter() < deadline:
            method, path, headers, body = make(conn_no, n)
            n += 1
            lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines.append(f"Content-Length: {len(body)}")
            started = time.perf_counter()
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            status, _ = await _read_response(reader)
            out.latencies_ms.append((time.perf_counter() - started) * 1000)
            out.requests += 1
            if status >= 400:
                out.errors += 1
    finally:
        writer.close()


def _worker(
    url: str,
    make: RequestFactory,
    first_conn: int,
    connections: int,
    seconds: float,
    queue: mp.Queue,
) -> None:
    async def main() -> Result:
        out = Result(0, 0, seconds, [])
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(_connection(url, make, first_conn + i, deadline, out) for i in range(connections))
        )
        return out

    queue.put(asyncio.run(main()))


def run(
    url: str, make: RequestFactory, concurrency: int, seconds: float, processes: int = 1
) -> Result:
    """Drive ``concurrency`` keep-alive connections for ``seconds`` and merge the results."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    per = [
        concurrency // processes + (1 if i < concurrency % processes else 0)
        for i in range(processes)
    ]
    procs = []
    first = 0
    for count in per:
        p = ctx.Process(target=_worker, args=(url, make, first, count, seconds, queue))
        p.start()
        procs.append(p)
        first += count
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    merged = Result(0, 0, seconds, [])
    for r in results:
        merged.requests += r.requests
        merged.errors += r.errors
        merged.latencies_ms.extend(r.latencies_ms)
    return merged
