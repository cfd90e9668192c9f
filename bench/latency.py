"""Propagation latency: ``python -m bench.latency [--pg URL] [--members N] [--samples K]``.

From the moment ``giveConsent`` is answered to the moment the partner's webhook receiver has
the ``member.shared`` event, with one real ``consentry worker`` process (all jobs enabled) on a
store of N members. The consent is given through the same service the mutation calls, in this
process (its subscribers enqueue the event; the commit NOTIFYs on PostgreSQL); the worker and
the signature-checking receiver are their own processes. One sample at a time, each on a
member not yet in the partner's scope. Reports p50, p99 and max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stores import drop_scratch, scratch_store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

__all__ = ["bench", "report"]


def run_receiver() -> None:
    """A separate process: POST /hook (signature checked) notes the arrival time; GET /last."""
    from aiohttp import web

    from bench.receiver import serve_forever, signed

    state = {"count": 0, "last": 0.0, "bad": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        h = request.headers
        if not signed(SECRET, h, body):
            state["bad"] += 1
            return web.Response(status=401)
        state["count"] += 1
        state["last"] = arrived
        return web.Response(status=204)

    async def last(request: web.Request) -> web.Response:
        return web.json_response(state)

    serve_forever(("/hook", hook), ("/last", last))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    from tortoise.exceptions import OperationalError

    from api.consent import consents, policy, purposes
    from api.core.clock import SystemClock
    from api.core.settings import Settings
    from api.members import records as members
    from api.models.enums import PartnerChangeKind, PartnerKind, PersonalField
    from api.models.partner import Partner, PartnerChange
    from api.platform.db import close_db, init_db, migrate
    from api.security.sealed import seal
    from api.service.composition import build_runtime
    from bench.seed import bulk_members, copy_members

    tmp, overrides, dbs = await scratch_store(args.pg, "latency")
    settings = Settings(data_dir=tmp, **overrides)
    env = dict(os.environ, CONSENTRY_DATA_DIR=str(tmp), PYTHONPATH=str(ROOT))
    if args.pg:
        env["CONSENTRY_DATABASE_URL"] = overrides["database_url"]
        env["CONSENTRY_VAULT_DATABASE_URL"] = overrides["vault_database_url"]
    receiver = subprocess.Popen([sys.executable, "-m", "bench.latency", "--receiver"],  # noqa: ASYNC220
                                stdout=subprocess.PIPE, cwd=ROOT)
    worker: subprocess.Popen[bytes] | None = None
    try:
        port = int(receiver.stdout.readline())  # type: ignore[union-attr]
        await migrate(settings)
        await init_db(settings)
        rt = build_runtime(settings, SystemClock())
        await purposes.ensure_builtin_purposes(rt)
        await policy.ensure_initial_policy(rt)
        version = (await policy.in_force(rt)).version
        started = time.perf_counter()
        if args.pg:
            await copy_members(rt, overrides["database_url"], args.members, prefix="lat")
        else:
            await bulk_members(rt, args.members, prefix="lat")
        seeded_s = time.perf_counter() - started
        ids = [(await members.register(
            rt, user_id=f"sample{i:04d}", email=f"sample{i:04d}@example.org",
            full_name=f"Sample Member {i}", password="correct horse battery 42")).id
            for i in range(args.samples)]
        now = rt.now()
        pid = uuid.uuid4()
        config = {"url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}
        await Partner.create(id=pid, name="Bench Research", kind=PartnerKind.RESEARCH,
                             purpose="research", adapter="webhook",
                             config_ct=seal(rt.keys, f"partner-config/{pid}",
                                            json.dumps(config).encode()),
                             created_at=now - timedelta(days=40))
        await PartnerChange.create(id=uuid.uuid4(), partner_id=pid, kind=PartnerChangeKind.ADDED,
                                   announced_at=now - timedelta(days=40),
                                   effective_at=now - timedelta(days=9),
                                   fields_=[PersonalField.FULL_NAME.value], optional_fields=[],
                                   applied_at=now)
        worker = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "api.service.cli", "worker", *args.worker_args],
            env=env, cwd=ROOT, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        await asyncio.sleep(args.settle)  # let its first runs of the scanning jobs start
        latencies: list[float] = []
        busy = 0
        async with aiohttp.ClientSession() as http:
            async def state() -> dict[str, Any]:
                async with http.get(f"http://127.0.0.1:{port}/last") as r:
                    return dict(await r.json())

            for member_id in ids:
                # A random pause: samples must not fall in step with the worker's poll.
                await asyncio.sleep(random.uniform(0, 0.3))
                seen = (await state())["count"]
                while True:
                    try:
                        await consents.give(rt, member_id, "research", version)
                        break
                    except OperationalError:
                        # SQLite: a deferred transaction that read before the worker's
                        # commit cannot upgrade to a write ("database is locked"; see notes).
                        busy += 1
                answered = time.time()
                deadline = time.monotonic() + 30
                while (s := await state())["count"] == seen:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the event did not arrive within 30 s")
                    await asyncio.sleep(0.002)
                latencies.append(s["last"] - answered)
        await close_db()
    finally:
        for proc in (worker, receiver):
            if proc is not None:
                proc.terminate()
                proc.wait()
        await drop_scratch(args.pg, dbs)
    ms = [x * 1000 for x in latencies]
    return {"scenario": "propagation latency", "database": "postgresql" if args.pg else "sqlite",
            "members": args.members + args.samples, "samples": len(ms),
            "p50_ms": round(_percentile(ms, 0.5), 1), "p99_ms": round(_percentile(ms, 0.99), 1),
            "max_ms": round(max(ms), 1), "sqlite_busy_retries": busy, "seed_seconds": round(seeded_s, 1),
            "worker_args": args.worker_args, "at": datetime.now(UTC).isoformat()}


def report(r: dict[str, Any]) -> None:
    print(f"\n== propagation latency, {r['database']}, {r['members']:,} members "
          f"(goal: p99 <= 250 ms)")
    print(f"giveConsent answered -> receiver has member.shared: p50 {r['p50_ms']:.0f} ms, "
          f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms ({r['samples']} samples)",
          flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.latency")
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--pg", default="", help="admin URL of a PostgreSQL server (else SQLite)")
    p.add_argument("--worker-args", nargs="*", default=[])
    p.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main() -> None:
    args = parse()
    if args.receiver:
        run_receiver()
        return
    result = asyncio.run(bench(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"latency-{datetime.now(UTC):%Y%m%dT%H%M%S}-{result['database']}.json"
    out.write_text(json.dumps(result, indent=2))
    report(result)


if __name__ == "__main__":
    main()
