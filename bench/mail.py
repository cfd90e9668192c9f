"""Announcement fan-out and mail throughput: ``python -m bench.mail [--members N] [--pg [URL]]``.

Seeds N members in a scratch store, records one announcement, times the ``announcements``
job writing the N notifications, then times the mailer sending them all to a local SMTP
server (aiosmtpd's Sink in its own process on 127.0.0.1, so it does not share the mailer's
interpreter) and reports mails per second for one worker. The goal is 200 mails/s. Also run
by ``python -m bench`` (scenario ``mail``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import Any

from bench.stores import drop_scratch, scratch_store

__all__ = ["bench", "report", "main", "GOAL_PER_SECOND"]

GOAL_PER_SECOND = 200
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from api.core.settings import Settings
    from api.members import announcements, mail, notifications
    from api.platform.db import close_db, init_db, migrate
    from api.service.composition import build_runtime
    from bench.seed import bulk_members

    tmp, overrides, dbs = await scratch_store(args.pg, "mail")
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
        "-l", f"127.0.0.1:{port}")
    try:
        await _wait_for(port)
        settings = Settings(data_dir=tmp, smtp_host="127.0.0.1", smtp_port=port, **overrides)
        await migrate(settings)
        await init_db(settings)
        try:
            rt = build_runtime(settings)
            await bulk_members(rt, args.members)
            started = time.perf_counter()
            await notifications.announce_to_members(rt, None, kind="policy.announced",
                                                    subject="Bench", body="A bench message.")
            announce_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            fanned = await announcements.fan_out(rt)
            fan_out_seconds = time.perf_counter() - started
            started = time.perf_counter()
            sent = 0
            while sent < fanned["notified"]:
                counts = await mail.send_pending(rt)
                if not counts[mail.SENT]:
                    break
                sent += counts[mail.SENT]
            mail_seconds = time.perf_counter() - started
        finally:
            await close_db()
    finally:
        server.terminate()
        await server.wait()
        await drop_scratch(args.pg, dbs)
    return {"database": "postgresql" if args.pg else "sqlite", "members": args.members,
            "announce_ms": round(announce_ms, 2), "notified": fanned["notified"],
            "fan_out_seconds": round(fan_out_seconds, 2),
            "fan_out_per_second": round(fanned["notified"] / fan_out_seconds)
            if fan_out_seconds else 0,
            "sent": sent, "mail_seconds": round(mail_seconds, 2),
            "mails_per_second": round(sent / mail_seconds) if mail_seconds else 0,
            "concurrency": mail.CONCURRENCY, "goal_mails_per_second": GOAL_PER_SECOND}


def report(r: dict[str, Any]) -> None:
    print(f"\n== announcement fan-out and mail ({r['database']}, {r['members']:,} members; "
          f"goal: >= {GOAL_PER_SECOND} mails/s per worker)")
    print(f"announce (one row): {r['announce_ms']:.1f} ms; fan-out: {r['notified']:,} "
          f"notifications in {r['fan_out_seconds']:.2f} s ({r['fan_out_per_second']:,}/s); "
          f"mail: {r['sent']:,} sent in {r['mail_seconds']:.2f} s: "
          f"{r['mails_per_second']:,} mails/s over {r['concurrency']} connections", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.mail", description=__doc__)
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--pg", nargs="?", const=PG_DEFAULT, default=None,
                   help=f"run on PostgreSQL (server URL, default {PG_DEFAULT})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = asyncio.run(bench(parse_args(argv)))
    report(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
