"""Research datasets at scale: ``python -m bench.research [--pg URL] [--small N] [--large N]``.

Seeds members with varied birth dates, towns, join years, purchases and consents (real data
keys, real AES-GCM ciphertexts, consent events as the consent service writes them, minus the
signed receipt), then times ``api.rights.research.create_dataset`` at ``--small`` members and,
after growing the same store, at ``--large``, and prints the ratio of the two times: about
``large / small`` is linear. PostgreSQL by default (a scratch database, dropped afterwards).
The tests seed with :func:`seed_members` too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, MemberStatus
from api.models.member import Member, MemberKey
from api.models.partner import Purchase
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index
from api.security.envelope import new_data_key
from api.security.passwords import hash_password
from bench.seed import PASSWORD
from bench.stores import drop_scratch, scratch_store

__all__ = ["Seeded", "seed_members", "bench", "main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
TOWNS = ("Leeds", "York", "Bradford", "Hull", "Sheffield", "Wakefield", "Harrogate", "Halifax")


@dataclass(frozen=True)
class Seeded:
    """What a seeded member holds, for tests to check a dataset against."""

    id: str
    user_id: str
    email: str
    address: str
    date_of_birth: date
    consents: frozenset[str]
    purchases: int


async def seed_members(rt: Runtime, n: int, *, seed: int = 5, prefix: str = "r",
                       research_share: float = 0.7, batch: int = 1000) -> list[Seeded]:
    """``n`` members written through the ORM in batches, as ``members.register`` writes them
    (one password hash shared by all, as in bench/seed.py), with consent events given a day before
    ``rt.now()`` and some purchases."""
    rng = random.Random(seed)
    shared_hash = await hash_password(PASSWORD)
    now = rt.now()
    out: list[Seeded] = []
    members: list[Member] = []
    keys: list[MemberKey] = []
    events: list[ConsentEvent] = []
    purchases: list[Purchase] = []

    async def flush() -> None:
        await MemberKey.bulk_create(keys)
        await Member.bulk_create(members)
        if events:
            await ConsentEvent.bulk_create(events)
        if purchases:
            await Purchase.bulk_create(purchases)
        for rows in (members, keys, events, purchases):
            rows.clear()

    for i in range(n):
        member_id = uuid.uuid4()
        key, wrapped, version = new_data_key(rt.keys, str(member_id))
        user_id, email = f"{prefix}{i:07d}", f"{prefix}{i:07d}@example.org"
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 66))
        address = f"{rng.randrange(1, 200)} {rng.choice(('Mill', 'High', 'Park'))} Street, " \
                  f"{rng.choice(TOWNS)} LS{rng.randrange(1, 30)}"
        joined = now - timedelta(days=rng.randrange(2, 365 * 8))
        consents = set()
        if rng.random() < research_share:
            consents.add("research")
        for purpose, share in (("marketing", 0.5), ("personalization", 0.3)):
            if rng.random() < share:
                consents.add(purpose)
        bought = rng.choice((0, 0, 0, 1, 1, 2, 3, 5, 8, 13, 21))
        keys.append(MemberKey(member_id=member_id, wrapped=wrapped, kek_version=version))
        members.append(Member(
            id=member_id, status=MemberStatus.ACTIVE, created_at=joined, last_active_at=now,
            password_hash=shared_hash, user_id_idx=blind_index(rt.keys, "user_id", user_id),
            email_idx=blind_index(rt.keys, "email", email),
            user_id_ct=key.encrypt("user_id", user_id), email_ct=key.encrypt("email", email),
            full_name_ct=key.encrypt("full_name", f"Member {i} Example"),
            date_of_birth_ct=key.encrypt("date_of_birth", born.isoformat()),
            phone_ct=None, address_ct=key.encrypt("address", address), has_purchase=bought > 0))
        events.extend(ConsentEvent(
            id=uuid.uuid4(), member_id=member_id, purpose=p, state=ConsentState.GIVEN,
            policy_version="1", at=now - timedelta(days=1), receipt="bench")
            for p in sorted(consents))
        purchases.extend(Purchase(
            id=uuid.uuid4(), member_id=member_id, amount="10.00", currency="EUR",
            reference_ct=key.encrypt("purchase_reference", f"order-{i}-{j}"),
            at=now - timedelta(days=1)) for j in range(bought))
        out.append(Seeded(str(member_id), user_id, email, address, born, frozenset(consents),
                          bought))
        if len(members) >= batch:
            await flush()
    if members:
        await flush()
    return out


async def _timed(rt: Runtime, k: int, attributes: list[str], rounds: int) -> dict[str, Any]:
    from api.rights import research

    times, last = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        last = await research.create_dataset(rt, "admin:bench", k, attributes)
        times.append(time.perf_counter() - started)
    assert last is not None
    return {"seconds": round(sorted(times)[len(times) // 2], 3), "rows": last.rows,
            "suppressed": last.suppressed, "levels": last.levels}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from api.consent import policy, purposes
    from api.core.clock import SystemClock
    from api.core.settings import Settings
    from api.platform.db import close_db, init_db, migrate
    from api.service.composition import build_runtime

    tmp, overrides, dbs = await scratch_store(args.pg, "research")
    attributes = ["AGE_BAND", "REGION", "MEMBER_SINCE_YEAR", "PURCHASE_COUNT",
                  "CONSENTED_PURPOSES"]
    try:
        settings = Settings(data_dir=tmp, **overrides)
        await migrate(settings)
        await init_db(settings)
        rt = build_runtime(settings, SystemClock())
        await purposes.ensure_builtin_purposes(rt)
        await policy.ensure_initial_policy(rt)
        runs: dict[str, Any] = {}
        have = 0
        try:
            for label, size in (("small", args.small), ("large", args.large)):
                started = time.perf_counter()
                await seed_members(rt, size - have, seed=size, prefix=label[0])
                seeded = time.perf_counter() - started
                have = size
                runs[label] = {"members": size, "seed_seconds": round(seeded, 1),
                               **await _timed(rt, args.k, attributes, args.rounds)}
                print(f"  {size:,} members: {runs[label]['seconds']:.2f} s "
                      f"(seeded in {seeded:.0f} s)", flush=True)
        finally:
            await close_db()
    finally:
        await drop_scratch(args.pg, dbs)
    ratio = runs["large"]["seconds"] / runs["small"]["seconds"] if runs["small"]["seconds"] else 0
    size_ratio = args.large / args.small
    return {"database": "postgresql" if args.pg else "sqlite", "k": args.k,
            "attributes": attributes, "runs": runs, "time_ratio": round(ratio, 2),
            "size_ratio": size_ratio, "linear_or_better": ratio <= size_ratio * 1.2}


def report(r: dict[str, Any]) -> None:
    small, large = r["runs"]["small"], r["runs"]["large"]
    print(f"\n== createResearchDataset at {small['members']:,} vs {large['members']:,} members "
          f"({r['database']}; k={r['k']}, all attributes; goal: time ratio <= size ratio)")
    for label in ("small", "large"):
        run = r["runs"][label]
        print(f"{run['members']:>9,} members: {run['seconds']:.2f} s  rows {run['rows']:,}  "
              f"suppressed {run['suppressed']:,}  levels {run['levels']}")
    print(f"time ratio {r['time_ratio']:.2f} for size ratio {r['size_ratio']:.0f} "
          f"({'linear or better' if r['linear_or_better'] else 'WORSE than linear'})", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.research", description=__doc__)
    p.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL ('' for SQLite)")
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument("--large", type=int, default=100_000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="timed runs per size (median)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = asyncio.run(bench(parse(argv)))
    report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"research-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
