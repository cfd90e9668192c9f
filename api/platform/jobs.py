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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.models.ops import JobLease
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


async def run_all(rt: Runtime, jobs: Sequence[Job],
                  only: Sequence[str] | None = None) -> dict[str, Any]:
    """Run each job once, in the given order. Returns what each job reported, or 'skipped'
    if another process holds its lease."""
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
            continue
        try:
            results[name] = await spec.fn(rt)
        except Exception:
            log.exception("job %s failed", name)
            results[name] = "failed"
        finally:
            if spec.exclusive:
                await _release(rt, name)
    return results


async def run_forever(rt: Runtime, jobs: Sequence[Job], interval: float = 1.0,
                      stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    while not stop.is_set():
        await run_all(rt, jobs)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
