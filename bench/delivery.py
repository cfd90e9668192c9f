"""Outbox delivery throughput: ``python -m bench.delivery [--events N] [--pg URL] [--adapter A]``.

Queues N ``member.shared`` events (through the real ``api.sharing.outbox.enqueue``, spread over a
few members) for one partner in force, then times ``deliver_due`` until the outbox is empty.
The webhook receiver runs in its own process (aiohttp, verifies every signature, dedupes by
``webhook-id``), so the figure includes real HTTP, signing, decryption, the grant re-check,
attempt logs and disclosure rows. Results go to bench/results/delivery-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def run_receiver() -> None:
    """A separate process: POST /hook, verify signature, count unique ids; GET /stats."""
    from aiohttp import web

    from bench.receiver import serve_forever, signed

    seen: set[str] = set()
    stats = {"requests": 0, "bad": 0, "duplicates": 0}

    async def hook(request: web.Request) -> web.Response:
        stats["requests"] += 1
        body = await request.read()
        h = request.headers
        if not signed(SECRET, h, body):
            stats["bad"] += 1
            return web.Response(status=401)
        if h["webhook-id"] in seen:
            stats["duplicates"] += 1
        seen.add(h["webhook-id"])
        return web.Response(status=204)

    async def report(request: web.Request) -> web.Response:
        return web.json_response({**stats, "unique": len(seen)})

    serve_forever(("/hook", hook), ("/stats", report))



async def bench(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    from tortoise.transactions import in_transaction

    from api.core.clock import SystemClock
    from api.core.settings import Settings
    from api.members import records as members
    from api.models.enums import OutboxStatus, PartnerChangeKind, PartnerKind, PersonalField
    from api.models.member import Member
    from api.models.partner import OutboxEvent, Partner, PartnerChange
    from api.platform.db import close_db, init_db, migrate
    from api.security.sealed import seal
    from api.service.composition import build_runtime
    from api.sharing.outbox import enqueue
    from api.sharing.queue import deliver_due
    from api.sharing.refs import partner_ref

    tmp, overrides, dbs = await scratch_store(args.pg, "delivery")
    settings = Settings(data_dir=tmp, **overrides)
    receiver = subprocess.Popen([sys.executable, "-m", "bench.delivery", "--receiver"],  # noqa: ASYNC220
                                stdout=subprocess.PIPE, cwd=ROOT)
    try:
        port = int(receiver.stdout.readline())  # type: ignore[union-attr]
        await migrate(settings)
        await init_db(settings)
        rt = build_runtime(settings, SystemClock())
        now = rt.now()
        ids = [(await members.register(rt, user_id=f"bench{i:04d}", email=f"bench{i:04d}@example.org",
                                       full_name=f"Bench Member {i}", password="correct horse battery 42",
                                       address=f"{i} Bench Road")).id for i in range(args.members)]
        await Member.filter(id__in=ids).update(has_purchase=True)
        config = ({"url": f"http://127.0.0.1:{port}/hook", "secret": SECRET} if args.adapter == "webhook"
                  else {"directory": str(tmp / "jsonl")})
        pid = uuid.uuid4()
        await Partner.create(id=pid, name="Bench Logistics", kind=PartnerKind.LOGISTICS,
                             purpose="order_fulfillment", adapter=args.adapter,
                             config_ct=seal(rt.keys, f"partner-config/{pid}", json.dumps(config).encode()),
                             created_at=now - timedelta(days=40))
        await PartnerChange.create(id=uuid.uuid4(), partner_id=pid, kind=PartnerChangeKind.ADDED,
                                   announced_at=now - timedelta(days=40),
                                   effective_at=now - timedelta(days=9),
                                   fields_=[PersonalField.FULL_NAME.value, PersonalField.ADDRESS.value],
                                   optional_fields=[], applied_at=now)
        keys = {m: await members.data_key(rt, m) for m in ids}
        for start in range(0, args.events, 500):
            async with in_transaction("default") as conn:
                for i in range(start, min(start + 500, args.events)):
                    m = ids[i % len(ids)]
                    await enqueue(rt, conn, partner_id=str(pid), member_id=m, type="member.shared",
                                  member={"ref": partner_ref(rt.keys, str(pid), m),
                                          "fullName": f"Bench Member {i}", "address": f"{i} Bench Road"},
                                  fields=["FULL_NAME", "ADDRESS"], purpose="order_fulfillment",
                                  legal_basis="CONTRACT", key=keys[m])
        started, cpu_started = time.perf_counter(), time.process_time()
        totals = {"delivered": 0, "failed": 0, "dead": 0}
        while True:
            stats = await deliver_due(rt, batch=args.batch, concurrency=args.concurrency)
            for k in totals:
                totals[k] += stats[k]
            if not stats["claimed"]:
                break
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started  # this process only: steadier than wall time
        left = await OutboxEvent.filter(status=OutboxStatus.PENDING).count()
        received: dict[str, Any] = {}
        if args.adapter == "webhook":
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/stats") as r:
                received = await r.json()
        await close_db()
    finally:
        receiver.kill()
        receiver.wait()
        await drop_scratch(args.pg, dbs)
    return {
        "scenario": "outbox delivery", "database": "postgresql" if args.pg else "sqlite",
        "adapter": args.adapter, "events": args.events, "members": args.members,
        "batch": args.batch, "concurrency": args.concurrency, "seconds": round(elapsed, 3),
        "events_per_second": round(totals["delivered"] / elapsed, 1),
        "worker_cpu_seconds": round(cpu, 3),
        "worker_cpu_us_per_event": round(cpu * 1e6 / max(totals["delivered"], 1), 1), **totals,
        "pending_left": left, "receiver": received,
        "at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--adapter", choices=("webhook", "jsonl"), default="webhook")
    parser.add_argument("--pg", default="", help="admin URL of a PostgreSQL server (else SQLite)")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        run_receiver()
        return
    result = asyncio.run(bench(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"delivery-{datetime.now(UTC):%Y%m%dT%H%M%S}-{result['database']}-{args.adapter}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
