"""Propagation latency: ``python -m bench.latency [--pg URL] [--members N] [--samples K]``.

From the moment ``giveConsent`` is answered to the moment the partner's webhook receiver has
the ``member.shared`` event, and from the moment a member's destruction (``withdrawMembership``,
an erasure) is answered to the moment it has ``member.erasure``, with one real
``consentry worker`` process (all jobs of the composition, default intervals) on a store of N
members (PostgreSQL: seeded with COPY, so 1,000,000 takes minutes). The changes are made
through the same services the mutations call, in this process (their subscribers enqueue the
events; the commit NOTIFYs on PostgreSQL); the worker and the signature-checking receiver are
their own processes. One sample at a time, each consent on a member not yet in the partner's
scope, each erasure on a member the partner received. Reports p50, p99 and max in
milliseconds, and each job's run count and mean duration in the worker (its ``/metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
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
METRICS_TOKEN = "bench-latency-metrics"

__all__ = ["bench", "report"]


def run_receiver() -> None:
    """A separate process: POST /hook (signature checked) notes the arrival time; GET /last."""
    from aiohttp import web

    from bench.receiver import serve_forever, signed

    state: dict[str, Any] = {"count": 0, "last": 0.0, "bad": 0, "types": {}}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        h = request.headers
        if not signed(SECRET, h, body):
            state["bad"] += 1
            return web.Response(status=401)
        state["count"] += 1
        state["last"] = arrived
        seen = state["types"].setdefault(json.loads(body)["type"], {"count": 0, "last": 0.0})
        seen["count"] += 1
        seen["last"] = arrived
        return web.Response(status=204)

    async def last(request: web.Request) -> web.Response:
        return web.json_response(state)

    serve_forever(("/hook", hook), ("/last", last))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def _summary(latencies: list[float]) -> dict[str, Any]:
    ms = [x * 1000 for x in latencies]
    if not ms:
        return {"samples": 0}
    return {"samples": len(ms), "p50_ms": round(_percentile(ms, 0.5), 1),
            "p99_ms": round(_percentile(ms, 0.99), 1), "max_ms": round(max(ms), 1)}


def job_times(metrics_text: str) -> dict[str, dict[str, Any]]:
    """Per job, from the worker's ``/metrics``: runs, mean and total milliseconds, and the
    smallest histogram bucket holding every run (an upper bound of the longest)."""
    from prometheus_client.parser import text_string_to_metric_families

    jobs: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "consentry_job_duration_seconds":
            continue
        buckets: dict[str, list[tuple[float, float]]] = {}
        for sample in family.samples:
            job = jobs.setdefault(sample.labels["job"], {})
            if sample.name.endswith("_count"):
                job["runs"] = int(sample.value)
            elif sample.name.endswith("_sum"):
                job["total_ms"] = round(sample.value * 1000, 1)
            elif sample.name.endswith("_bucket"):
                buckets.setdefault(sample.labels["job"], []).append(
                    (float(sample.labels["le"]), sample.value))
        for name, rows in buckets.items():
            job = jobs[name]
            job["mean_ms"] = round(job["total_ms"] / job["runs"], 2) if job.get("runs") else 0.0
            job["max_le_s"] = min((le for le, n in rows if n >= job.get("runs", 0)),
                                  default=float("inf"))
    return jobs


async def _worker_up(metrics_port: int) -> None:
    """Until the worker has run its deliveries once (migrated, listening, adapters imported):
    the samples measure a running worker, not its start."""
    import aiohttp

    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{metrics_port}/metrics", headers={
                        "authorization": f"Bearer {METRICS_TOKEN}"}) as r:
                    if job_times(await r.text()).get("deliver_outbox", {}).get("runs"):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the worker did not start within 120 s")


async def _wait_for(read: Any, kind: str, seen: int) -> float:
    """The receiver's arrival time of the next ``kind`` event after ``seen`` of them."""
    deadline = time.monotonic() + 30
    while True:
        got = (await read())["types"].get(kind, {"count": 0, "last": 0.0})
        if got["count"] > seen:
            return float(got["last"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} did not arrive within 30 s")
        await asyncio.sleep(0.002)


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
    from api.rights import erasure
    from api.security.sealed import seal
    from api.service.composition import build_runtime
    from bench.seed import bulk_members, copy_members, seed_history

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
        history_s = 0.0
        if args.pg and args.history:
            print(f"seeding history for {args.members:,} members...", flush=True)
            history_s = await seed_history(overrides["database_url"], str(pid), "research")
        # The samples come after the history: none of them is in the partner's scope yet.
        ids = [(await members.register(
            rt, user_id=f"sample{i:04d}", email=f"sample{i:04d}@example.org",
            full_name=f"Sample Member {i}", password="correct horse battery 42")).id
            for i in range(args.samples)]
        metrics_port = _free_port()
        env["CONSENTRY_METRICS_TOKEN"] = METRICS_TOKEN
        worker = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "api.service.cli", "worker", "--metrics-port",
             str(metrics_port), *args.worker_args],
            env=env, cwd=ROOT, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        worker_started = time.time()
        await _worker_up(metrics_port)
        await asyncio.sleep(args.settle)  # let its first runs of the scanning jobs start
        series: list[tuple[float, float]] = []  # (seconds since the worker started, ms)
        shared: list[float] = []
        erased: list[float] = []
        busy = 0
        load = [os.getloadavg()[0]]
        async with aiohttp.ClientSession() as http:
            async def state() -> dict[str, Any]:
                async with http.get(f"http://127.0.0.1:{port}/last") as r:
                    return dict(await r.json())

            async def seen(kind: str) -> int:
                return int((await state())["types"].get(kind, {"count": 0})["count"])

            for member_id in ids:
                # A random pause: samples must not fall in step with the worker's poll.
                await asyncio.sleep(random.uniform(0, 0.3))
                before = await seen("member.shared")
                while True:
                    try:
                        await consents.give(rt, member_id, "research", version)
                        break
                    except OperationalError:
                        # SQLite: a deferred transaction that read before the worker's
                        # commit cannot upgrade to a write ("database is locked"; see notes).
                        busy += 1
                answered = time.time()
                shared.append(await _wait_for(state, "member.shared", before) - answered)
                series.append((round(answered - worker_started, 2), round(shared[-1] * 1000, 1)))
            load.append(os.getloadavg()[0])
            # Each of these members was delivered to the partner: destroying it tells it.
            for member_id in ids[:args.erasures]:
                await asyncio.sleep(random.uniform(0, 0.3))
                before = await seen("member.erasure")
                while True:
                    try:
                        await erasure.destroy(rt, member_id, actor="admin:bench")
                        break
                    except OperationalError:
                        busy += 1
                answered = time.time()
                erased.append(await _wait_for(state, "member.erasure", before) - answered)
            load.append(os.getloadavg()[0])
            headers = {"authorization": f"Bearer {METRICS_TOKEN}"}
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics",
                                headers=headers) as r:
                jobs = job_times(await r.text())
        await close_db()
    finally:
        for proc in (worker, receiver):
            if proc is not None:
                proc.terminate()
                proc.wait()
        await drop_scratch(args.pg, dbs)
    return {"scenario": "propagation latency", "database": "postgresql" if args.pg else "sqlite",
            "members": args.members + args.samples, **_summary(shared),
            "erasure": _summary(erased), "worker_jobs": jobs, "shared_series": series,
            "load_average": [round(x, 2) for x in load], "sqlite_busy_retries": busy,
            "seed_seconds": round(seeded_s, 1), "history_seconds": round(history_s, 1),
            "history": bool(args.pg and args.history), "worker_args": args.worker_args,
            "at": datetime.now(UTC).isoformat()}


def report(r: dict[str, Any]) -> None:
    print(f"\n== propagation latency, {r['database']}, {r['members']:,} members, one worker, "
          f"all jobs (goal: p99 <= 250 ms); load average {r['load_average']}")
    print(f"giveConsent answered -> receiver has member.shared: p50 {r['p50_ms']:.0f} ms, "
          f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms ({r['samples']} samples)",
          flush=True)
    e = r["erasure"]
    if e["samples"]:
        print(f"erasure answered -> receiver has member.erasure: p50 {e['p50_ms']:.0f} ms, "
              f"p99 {e['p99_ms']:.0f} ms, max {e['max_ms']:.0f} ms ({e['samples']} samples)")
    print(f"{'worker job':<28}{'runs':>6}{'mean ms':>10}{'longest <= s':>14}")
    for name, job in sorted(r["worker_jobs"].items(), key=lambda kv: -kv[1].get("mean_ms", 0)):
        print(f"{name:<28}{job.get('runs', 0):>6}{job.get('mean_ms', 0):>10.1f}"
              f"{job.get('max_le_s', 0):>14g}", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.latency")
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--erasures", type=int, default=50,
                   help="destroy this many of the sampled members (after the consents)")
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--pg", default="", help="admin URL of a PostgreSQL server (else SQLite)")
    p.add_argument("--no-history", dest="history", action="store_false",
                   help="PostgreSQL: members only (default: consents, deliveries, duties, audit "
                        "entries, mails and an inactive cohort too, bench/seed.py)")
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
