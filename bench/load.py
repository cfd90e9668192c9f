"""The load generator: a separate process driving N keep-alive HTTP/1.1 connections.

Raw asyncio protocol + httptools (uvicorn's parser) instead of aiohttp: on a 2-core machine the
client shares the CPU with the server, and a client costing 3-4x less per request distorts the
reference less. Bounded by request count AND by time. Reads one JSON job on stdin, prints one
JSON result on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httptools


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), body))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return await self.waiter


def _raw_request(job: dict[str, Any]) -> bytes:
    body = job.get("body")
    data = json.dumps(body).encode() if body is not None else b""
    lines = [f"{job.get('method', 'GET')} {job['path']} HTTP/1.1", f"host: {job['host']}",
             "connection: keep-alive"]
    for name, value in (job.get("headers") or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines += ["content-type: application/json", f"content-length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


async def run(job: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    raw = _raw_request(job)
    conns: list[_Conn] = []
    for _ in range(job["concurrency"]):
        _, proto = await loop.create_connection(_Conn, job["host"], job["port"])
        conns.append(proto)
    first = await conns[0].request(raw)
    sample = first[1][:400].decode(errors="replace")

    async def phase(total: int, seconds: float) -> tuple[list[float], int, float]:
        latencies: list[float] = []
        errors = 0
        issued = 0
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(conn: _Conn) -> None:
            nonlocal issued, errors
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter()
                status, body = await conn.request(raw)
                latencies.append(time.perf_counter() - t0)
                if status != 200 or (b'"errors"' in body and not job.get("errors_ok")):
                    errors += 1

        await asyncio.gather(*(worker(c) for c in conns))
        return latencies, errors, time.perf_counter() - start

    if job.get("warmup", 0):
        await phase(job["warmup"], job.get("warmup_seconds", 5.0))
    latencies, errors, elapsed = await phase(job["requests"], job["seconds"])
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n, "errors": errors, "seconds": round(elapsed, 3),
        "rps": round(n / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_pct(latencies, 0.50) * 1000, 3),
        "p90_ms": round(_pct(latencies, 0.90) * 1000, 3),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 3),
        "max_ms": round((latencies[-1] if latencies else 0) * 1000, 3),
        "first_status": first[0], "sample": sample,
    }


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(run(job))
    except ImportError:  # pragma: no cover
        result = asyncio.run(run(job))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
