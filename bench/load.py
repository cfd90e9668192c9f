"""The load generator: a separate process driving N keep-alive HTTP/1.1 connections.

Raw asyncio protocol + httptools (uvicorn's parser) instead of aiohttp: on a 2-core machine the
client shares the CPU with the server, and a client costing 3-4x less per request distorts the
reference less. Bounded by request count AND by time. Reads one JSON job on stdin (several targets, measured
interleaved), prints one JSON result per target on stdout.

A target is one request, prebuilt as bytes. Two optional keys vary it at no per-request cost
beyond a join: ``variants`` (a list of ``path``/``headers`` overrides; connection ``i`` sends
variant ``i % len``: one member and token per connection) and ``counter`` (a placeholder string
in the body, replaced on every request by a zero-padded number as wide as the placeholder, so
the content-length holds: a fresh user id and email per ``register``).
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


def _raw_request(host: str, t: dict[str, Any]) -> bytes:
    body = t.get("body")
    data = json.dumps(body).encode() if body is not None else b""
    lines = [f"{t.get('method', 'GET')} {t['path']} HTTP/1.1", f"host: {host}",
             "connection: keep-alive"]
    for name, value in (t.get("headers") or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines += ["content-type: application/json", f"content-length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


class _Target:
    def __init__(self, host: str, spec: dict[str, Any]) -> None:
        self.name = spec["name"]
        self.raws = [_raw_request(host, {**spec, **v}) for v in spec.get("variants") or [{}]]
        mark = spec.get("counter") or ""
        self.width = len(mark)
        self.parts = [raw.split(mark.encode()) for raw in self.raws] if mark else []
        self.count = 0
        self.errors_ok = spec.get("errors_ok", False)
        self.latencies: list[float] = []
        self.errors = 0
        self.elapsed = 0.0
        self.round_rps: list[float] = []  # each recorded slice's own rate
        self.first: tuple[int, bytes] | None = None

    def raw(self, conn: int) -> bytes:
        """The request connection ``conn`` sends next."""
        if not self.parts:
            return self.raws[conn % len(self.raws)]
        self.count += 1
        return f"{self.count:0{self.width}d}".encode().join(self.parts[conn % len(self.parts)])


async def run(job: dict[str, Any]) -> dict[str, Any]:
    """Targets are measured in interleaved slices (round-robin), so background load on a shared
    machine hits the app and its reference alike and the ratio stays meaningful."""
    loop = asyncio.get_running_loop()
    targets = [_Target(job["host"], t) for t in job["targets"]]
    conns: list[_Conn] = []
    for _ in range(job["concurrency"]):
        _, proto = await loop.create_connection(_Conn, job["host"], job["port"])
        conns.append(proto)
    for t in targets:
        t.first = await conns[0].request(t.raw(0))

    async def phase(t: _Target, total: int, seconds: float, record: bool) -> None:
        issued = 0
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(index: int, conn: _Conn) -> None:
            nonlocal issued
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter()
                status, body = await conn.request(t.raw(index))
                if record:
                    t.latencies.append(time.perf_counter() - t0)
                    if status != 200 or (b'"errors"' in body and not t.errors_ok):
                        t.errors += 1

        done_before = len(t.latencies)
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
        if record:
            took = time.perf_counter() - start
            t.elapsed += took
            t.round_rps.append(round((len(t.latencies) - done_before) / took, 1) if took else 0.0)

    for t in targets:
        await phase(t, job.get("warmup", 0), job.get("warmup_seconds", 3.0), False)
    rounds = max(1, job.get("rounds", 1))
    for _ in range(rounds):
        for t in targets:
            await phase(t, max(1, job["requests"] // rounds), job["seconds"] / rounds, True)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    out = {}
    for t in targets:
        lat = sorted(t.latencies)
        n = len(lat)
        assert t.first is not None
        out[t.name] = {
            "requests": n, "errors": t.errors, "seconds": round(t.elapsed, 3),
            "rps": round(n / t.elapsed, 1) if t.elapsed else 0.0,
            "p50_ms": round(_pct(lat, 0.50) * 1000, 3),
            "p90_ms": round(_pct(lat, 0.90) * 1000, 3),
            "p99_ms": round(_pct(lat, 0.99) * 1000, 3),
            "max_ms": round((lat[-1] if lat else 0) * 1000, 3),
            "round_rps": t.round_rps,
            "first_status": t.first[0], "sample": t.first[1][:400].decode(errors="replace"),
        }
    return out


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
