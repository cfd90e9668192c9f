"""Job leases: one runner per job at a time, taken by a statement that never fails.

Taking a lease by INSERT and, on the duplicate key, UPDATE left an ERROR in the PostgreSQL
server log on every job start and aborted any transaction it ran in. The lease is now one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the lease expired.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tortoise.transactions import in_transaction

from api.models.ops import JobLease
from api.platform.jobs import Job, _acquire, _release, run_all
from tests.helpers_sql import statements


async def test_a_lease_is_held_until_it_expires_or_is_released(rt, clock):
    assert await _acquire(rt, "scan", 60)
    assert not await _acquire(rt, "scan", 60)  # held, also against the same process
    clock.advance(seconds=59)
    assert not await _acquire(rt, "scan", 60)
    clock.advance(seconds=1)
    assert await _acquire(rt, "scan", 60)  # expired: taken over, until moved on
    lease = await JobLease.get(name="scan")
    assert lease.until == clock.now() + timedelta(seconds=60)
    await _release(rt, "scan")
    released = await JobLease.get(name="scan")
    assert released.last_run_at == clock.now() and released.until == clock.now()
    assert await _acquire(rt, "scan", 60)  # released: free at once
    assert (await JobLease.get(name="scan")).last_run_at == clock.now()  # kept by the takeover


async def test_a_contested_lease_fails_no_statement(rt, clock):
    assert await _acquire(rt, "scan", 60)
    with statements() as sent:
        assert not await _acquire(rt, "scan", 60)  # held
        clock.advance(seconds=61)
        assert await _acquire(rt, "scan", 60)  # expired
        assert await _acquire(rt, "new-job", 60)  # first run ever
    assert [s.sql for s in sent if s.failed] == []


async def test_a_contested_lease_leaves_the_enclosing_transaction_usable(rt, clock):
    """On PostgreSQL a failed statement aborts the transaction it runs in: every later
    statement is refused until it rolls back."""
    assert await _acquire(rt, "scan", 60)
    async with in_transaction("default"):
        assert not await _acquire(rt, "scan", 60)
        await JobLease.create(name="other", holder="me", until=clock.now())
    assert await JobLease.filter(name="other").exists()


async def test_two_runners_at_once_run_an_exclusive_job_once(rt, clock):
    ran: list[int] = []
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def job(_rt):
        ran.append(1)
        started.set()
        await go_on.wait()
        return "done"

    jobs = [Job("slow", job)]
    first = asyncio.create_task(run_all(rt, jobs))
    await started.wait()
    second = await run_all(rt, jobs)  # while the first holds the lease
    go_on.set()
    assert (await first, second) == ({"slow": "done"}, {"slow": "skipped"})
    assert ran == [1]
    assert await run_all(rt, jobs) == {"slow": "done"}  # released when the first ended
