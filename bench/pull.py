"""``sharedMembers`` page latency: ``python -m bench.pull [--members N] [--page P] [--pg URL]``.

Seeds N purchasing members (real data keys and ciphertexts, bench.seed), announces a partner
through ``api.sharing.registry`` and lets 31 days pass on a manual clock, issues credentials
and a token through ``/oauth/token``, then walks every page of ``sharedMembers`` over HTTP
(the real ASGI app, in-process: no network) and times each page. Every page does the real
work: keyset candidate query, consent facts, grants, decrypting only granted fields, refs,
sealed cursors and one batch of disclosure rows. Results go to bench/results/pull-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stores import drop_scratch, scratch_store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUERY = ("query($first: Int, $after: String) { sharedMembers(first: $first, after: $after) { "
         "edges { cursor node { ref fullName address phone } } "
         "pageInfo { hasNextPage endCursor } } }")



def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from api.core.clock import ManualClock
    from api.core.settings import Settings
    from api.models.member import Member
    from api.models.partner import Disclosure
    from api.platform.db import close_db, init_db, migrate
    from api.service.asgi import create_app
    from api.service.composition import build_runtime
    from api.sharing import oauth
    from api.sharing import registry as partners_registry
    from bench.seed import bulk_members

    tmp, overrides, dbs = await scratch_store(args.pg, "pull")
    settings = Settings(data_dir=tmp, rate_limit_token="1000/minute", **overrides)
    try:
        await migrate(settings)
        await init_db(settings)
        clock = ManualClock(datetime.now(UTC))
        rt = build_runtime(settings, clock)
        await bulk_members(rt, args.members, prefix="pull")
        await Member.all().update(has_purchase=True)
        result = await partners_registry.announce(
            rt, "bench", name="Bench Logistics", kind="LOGISTICS", purpose="order_fulfillment",
            adapter="jsonl", config={"directory": str(tmp / "jsonl")},
            fields=["FULL_NAME", "ADDRESS"], optional_fields=["PHONE"])
        clock.advance(days=31)
        cred = await oauth.issue_credentials(rt, "bench", result.partner.id, ["members:read"])
        app = create_app(rt, manage_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            answer = await client.post("/oauth/token", data={
                "grant_type": "client_credentials", "client_id": cred.client_id,
                "client_secret": cred.client_secret})
            token = answer.json()["access_token"]
            headers = {"authorization": f"Bearer {token}"}
            times: list[float] = []
            after, seen = None, 0
            while True:
                started = time.perf_counter()
                response = await client.post("/graphql", headers=headers, json={
                    "query": QUERY, "variables": {"first": args.page, "after": after}})
                times.append(time.perf_counter() - started)
                page = response.json()["data"]["sharedMembers"]
                seen += len(page["edges"])
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
        disclosures = await Disclosure.all().count()
        await close_db()
    finally:
        await drop_scratch(args.pg, dbs)
    return {
        "scenario": "sharedMembers pages", "database": "postgresql" if args.pg else "sqlite",
        "members": args.members, "page": args.page, "pages": len(times), "returned": seen,
        "disclosures": disclosures,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(_pct(times, 0.95) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "members_per_second": round(seen / sum(times), 1),
        "at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pull")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--pg", default="", help="admin URL of a PostgreSQL server (else SQLite)")
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pull-{datetime.now(UTC):%Y%m%dT%H%M%S}-{result['database']}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
