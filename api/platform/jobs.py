"""Scheduled work: ``consentry jobs run`` runs each job once, in order; ``consentry worker``
loops. The list of jobs and their order is declared by the composition root
(``api/service/composition.py``) and passed in: nothing registers itself here.

Each job takes a lease row before it runs, so several machines running ``jobs run`` at once
never run the same job concurrently; every job must also be idempotent on its own.

The worker runs two cadences: the *prompt* jobs (deliveries, mail) whenever it is woken and at
least every ``poll`` seconds, the scanning jobs every ``interval``. Writers of due work call
:func:`notify_worker` in their transaction: a PostgreSQL NOTIFY (delivered at commit, to a
worker in any process) and an in-process wake (SQLite, or a worker in the same process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from api.models.ops import JobLease
from api.platform import audit
from api.platform.metrics import metrics_of
from api.platform.runtime import Runtime

__all__ = ["run_all", "run_forever", "Job", "notify_worker", "WAKE_CHANNEL"]

log = logging.getLogger("consentry.jobs")

JobFn = Callable[[Runtime], Awaitable[Any]]


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn
    lease_seconds: int = 300
    exclusive: bool = True  # False: the job coordinates its own rows (SKIP LOCKED deliveries)


_HOLDER = f"{socket.gethostname()}:{os.getpid()}"
WAKE_CHANNEL = "consentry_wake"
_WAKE = "worker_wake"  # Runtime.extras key of the in-process wake event


def _wake_event(rt: Runtime) -> asyncio.Event:
    event = rt.extras.get(_WAKE)
    if not isinstance(event, asyncio.Event):
        event = rt.extras[_WAKE] = asyncio.Event()
    return event


async def notify_worker(rt: Runtime, conn: BaseDBAsyncClient | None = None) -> None:
    """Tell the worker there is due work: NOTIFY on PostgreSQL in ``conn``'s transaction (sent
    at its commit, dropped on rollback), and the in-process wake."""
    conn = conn or connections.get("default")
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query("SELECT pg_notify($1, '')", [WAKE_CHANNEL])
    _wake_event(rt).set()


# One statement that never fails: a new job's row is inserted, an expired lease is taken over,
# a live one is left alone (0 rows). Inserting first and updating on the duplicate-key error
# logged an ERROR in the PostgreSQL server log on every job start, and aborted any enclosing
# transaction. Both dialects read ON CONFLICT ... DO UPDATE ... WHERE the same way.
_ACQUIRE = """INSERT INTO job_leases (name, holder, "until") VALUES ({0}, {1}, {2})
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "until" = excluded."until"
WHERE job_leases."until" <= {3}
RETURNING name"""


async def _acquire(rt: Runtime, name: str, seconds: int) -> bool:
    now = rt.now()
    conn = connections.get("default")
    marks = ("$1", "$2", "$3", "$4") if conn.capabilities.dialect == "postgres" else "????"
    # A datetime parameter is stored the way tortoise stores it (sqlite3's registered adapter).
    # The dict form: asyncpg's execute_query reports an INSERT's oid, not its row count.
    taken = await conn.execute_query_dict(_ACQUIRE.format(*marks),
                                          [name, _HOLDER, now + timedelta(seconds=seconds), now])
    return bool(taken)


async def _release(rt: Runtime, name: str) -> None:
    await JobLease.filter(name=name, holder=_HOLDER).update(until=rt.now(), last_run_at=rt.now())


def _observe(rt: Runtime, name: str, outcome: str, started: float | None, level: int) -> None:
    """One log line per job run (name, outcome, duration) and the job metrics."""
    m = metrics_of(rt)
    m.job_runs.labels(name, outcome).inc()
    extra: dict[str, Any] = {"job": name, "outcome": outcome}
    if started is not None:
        seconds = time.perf_counter() - started
        m.job_seconds.labels(name).observe(seconds)
        extra["duration_ms"] = round(seconds * 1000, 1)
    log.log(logging.ERROR if outcome == "failed" else level, "job", extra=extra)


async def run_all(rt: Runtime, jobs: Sequence[Job], only: Sequence[str] | None = None, *,
                  log_level: int = logging.INFO) -> dict[str, Any]:
    """Run each job once, in the given order. Returns what each job reported, or 'skipped'
    if another process holds its lease. Each run logs one line at ``log_level`` (a failed
    one at ERROR) and moves the job metrics."""
    unknown = set(only or ()) - {spec.name for spec in jobs}
    if unknown:
        raise ValueError(f"unknown job(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    for spec in jobs:
        name = spec.name
        if only and name not in only:
            continue
        if spec.exclusive and not await _acquire(rt, name, spec.lease_seconds):
            results[name] = "skipped"
            _observe(rt, name, "skipped", None, log_level)
            continue
        started = time.perf_counter()
        try:
            results[name] = await spec.fn(rt)
        except Exception:
            log.exception("job %s failed", name)
            results[name] = "failed"
        finally:
            if spec.exclusive:
                await _release(rt, name)
        _observe(rt, name, "failed" if results[name] == "failed" else "ok", started, log_level)
    return results


async def _listen(rt: Runtime, wake: asyncio.Event) -> Any:
    """A LISTEN on its own connection (PostgreSQL only), or None."""
    url = rt.settings.main_url
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import asyncpg

    try:
        conn = await asyncpg.connect(url.split("?", 1)[0])
        await conn.add_listener(WAKE_CHANNEL, lambda *_: wake.set())
    except (OSError, asyncpg.PostgresError):
        log.warning("worker LISTEN failed; polling only")
        return None
    return conn


async def run_forever(rt: Runtime, jobs: Sequence[Job], interval: float = 1.0,
                      stop: asyncio.Event | None = None, *, prompt: Sequence[str] = (),
                      poll: float | None = None) -> None:
    """Run the ``prompt`` jobs on every wake and at least every ``poll`` seconds, the others
    every ``interval`` seconds, until ``stop``. The two cadences are separate loops, so a long
    scan never holds up a delivery. A run's line is DEBUG (ten jobs a second would drown the
    log); failures stay ERROR, and the metrics count every run."""
    stop = stop or asyncio.Event()
    fast = [j for j in jobs if j.name in prompt]
    slow = [j for j in jobs if j.name not in prompt]
    wake = _wake_event(rt)
    listener = await _listen(rt, wake) if fast else None

    async def scanning() -> None:
        while not stop.is_set():
            await run_all(rt, slow, log_level=logging.DEBUG)
            if not fast:
                await _chain()
            await _until(stop, None, interval)

    async def prompt_loop() -> None:
        while not stop.is_set():
            wake.clear()  # a wake during the run below triggers another run
            await run_all(rt, fast, log_level=logging.DEBUG)
            await _chain()
            await _until(stop, wake, interval if poll is None else poll)

    try:
        await asyncio.gather(scanning(), *([prompt_loop()] if fast else []))
    finally:
        if listener is not None:
            await listener.close()


async def _chain() -> None:
    try:
        # Requests append audit entries unchained; the worker links them each cycle.
        await audit.chain_pending()
    except Exception:
        log.exception("audit chaining failed")


async def _until(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` (or ``wake``) is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in (stop, wake) if e is not None]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
