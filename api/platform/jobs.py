"""Scheduled work: ``consentry jobs run`` runs each job once, in order; ``consentry worker``
loops. The list of jobs and their order is declared by the composition root
(``api/service/composition.py``) and passed in: nothing registers itself here.

Each job takes a lease row before it runs, so several machines running ``jobs run`` at once
never run the same job concurrently; every job must also be idempotent on its own.
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

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.models.ops import JobLease
from api.platform import audit
from api.platform.metrics import metrics_of
from api.platform.runtime import Runtime

__all__ = ["run_all", "run_forever", "Job"]

log = logging.getLogger("consentry.jobs")

JobFn = Callable[[Runtime], Awaitable[Any]]


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn
    lease_seconds: int = 300
    exclusive: bool = True  # False: the job coordinates its own rows (SKIP LOCKED deliveries)


_HOLDER = f"{socket.gethostname()}:{os.getpid()}"


async def _acquire(rt: Runtime, name: str, seconds: int) -> bool:
    now = rt.now()
    until = now + timedelta(seconds=seconds)
    try:
        await JobLease.create(name=name, holder=_HOLDER, until=until)
        return True
    except IntegrityError:
        pass
    async with in_transaction("default") as conn:
        taken = await JobLease.filter(name=name, until__lte=now).using_db(conn).update(
            holder=_HOLDER, until=until)
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


async def run_forever(rt: Runtime, jobs: Sequence[Job], interval: float = 1.0,
                      stop: asyncio.Event | None = None) -> None:
    """Run every job each ``interval`` seconds until ``stop``. A run's line is DEBUG (ten
    jobs a second would drown the log); failures stay ERROR, and the metrics count every run."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        await run_all(rt, jobs, log_level=logging.DEBUG)
        try:
            # Requests append audit entries unchained; link them each cycle (a short window).
            await audit.chain_pending()
        except Exception:
            log.exception("audit chaining failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
