"""Bulk import throughput: ``python -m bench.importer [--rows N] [--format F] [--pg [URL]]``.

Generates N members (every profile field, two consents and one purchase each) as a CSV or JSON
Lines file, then imports it into a fresh store exactly as ``consentry import members`` does
(parse, judge every row, check the store, write in checkpointed batches) and reports members
per minute. The goal is 20,000 members/minute on PostgreSQL (twice Transcend's 10,000
records/minute). Also run by ``python -m bench`` (scenario ``import``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import time
from typing import Any

from bench.stores import drop_scratch, scratch_store

__all__ = ["generate", "bench", "main", "GOAL_PER_MINUTE"]

GOAL_PER_MINUTE = 20_000
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
_COLUMNS = ("userId", "email", "fullName", "dateOfBirth", "phone", "address", "purchases",
            "consents")


def _member(i: int) -> dict[str, Any]:
    return {
        "userId": f"imp{i:07d}", "email": f"imp{i:07d}@example.org",
        "fullName": f"Imported Member {i}", "dateOfBirth": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}",
        "phone": f"+44 20 7946 {i % 10000:04d}", "address": f"{1 + i % 300} High Street, Town",
        "purchases": [{"amount": f"{10 + i % 90}.50", "currency": "EUR",
                       "reference": f"INV-{i:07d}", "at": "2024-05-01T10:00:00Z"}],
        "consents": [{"purpose": "marketing", "at": "2021-03-04T10:00:00Z",
                      "policyVersion": "1.0", "source": "web-form"},
                     {"purpose": "research", "at": "2022-07-01T12:00:00+02:00",
                      "policyVersion": "1.0", "source": "paper-form"}],
    }


def generate(rows: int, file_format: str) -> bytes:
    if file_format == "jsonl":
        return "".join(json.dumps(_member(i)) + "\n" for i in range(rows)).encode()
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for i in range(rows):
        m = _member(i)
        writer.writerow([json.dumps(m[c]) if isinstance(m[c], list) else m[c] for c in _COLUMNS])
    return out.getvalue().encode()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from api.core.settings import Settings
    from api.models.member import Member
    from api.onboarding.formats import parse
    from api.onboarding.importer import import_members
    from api.platform.db import close_db, init_db, migrate
    from api.service.composition import build_runtime

    data = generate(args.rows, args.format)
    tmp, overrides, dbs = await scratch_store(args.pg, "import")
    try:
        settings = Settings(data_dir=tmp, **overrides)
        await migrate(settings)
        await init_db(settings)
        try:
            rt = build_runtime(settings)
            started = time.perf_counter()
            summary = await import_members(rt, parse(data, args.format),
                                           batch_size=args.batch)
            seconds = time.perf_counter() - started
            stored = await Member.all().count()
        finally:
            await close_db()
    finally:
        await drop_scratch(args.pg, dbs)
    return {"database": "postgresql" if args.pg else "sqlite", "format": args.format,
            "rows": args.rows, "batch": args.batch, "imported": summary.imported,
            "stored": stored, "consents": summary.consents, "purchases": summary.purchases,
            "seconds": round(seconds, 2),
            "members_per_minute": round(summary.imported / seconds * 60) if seconds else 0,
            "goal_members_per_minute": GOAL_PER_MINUTE}


def report(r: dict[str, Any]) -> None:
    print(f"\n== bulk import ({r['database']}, {r['format']}; goal: >= {GOAL_PER_MINUTE:,} "
          "members/minute on PostgreSQL)")
    print(f"{r['imported']:,} members ({r['consents']:,} consents, {r['purchases']:,} "
          f"purchases) in {r['seconds']:.1f} s: {r['members_per_minute']:,} members/minute",
          flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.importer", description=__doc__)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--pg", nargs="?", const=PG_DEFAULT, default=None,
                   help=f"import into PostgreSQL (server URL, default {PG_DEFAULT})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = asyncio.run(bench(parse_args(argv)))
    report(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
