"""The worker delivers when woken, not at its next poll: an outbox event wakes it (NOTIFY at
commit on PostgreSQL, even from another process; the in-process wake otherwise). The polls
here are an hour long, so only the wake can deliver within the test's guard."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from api.models.enums import OutboxStatus
from api.models.partner import OutboxEvent
from api.platform.jobs import Job, run_forever
from api.platform.metrics import metrics_of
from api.service.composition import with_settings
from api.sharing import queue as delivery
from api.sharing.outbox import enqueue
from api.sharing.refs import partner_ref
from tests.helpers_delivery import make_partner, queue

HOUR = 3600.0


async def _waiting_worker(rt, stop: asyncio.Event) -> asyncio.Task[None]:
    """A worker whose polls are an hour apart, started and past its first (empty) run."""
    job = Job("deliver_outbox", delivery.deliver_outbox, exclusive=False)
    task = asyncio.create_task(run_forever(rt, [job], interval=HOUR, stop=stop,
                                           prompt=("deliver_outbox",), poll=HOUR))
    runs = metrics_of(rt).job_runs.labels("deliver_outbox", "ok")
    before = runs._value.get()
    async with asyncio.timeout(10):
        while runs._value.get() == before:  # noqa: ASYNC110 (a metric another task moves)
            await asyncio.sleep(0.01)
    return task


async def _delivered(event_id: str) -> str:
    async with asyncio.timeout(10):
        while True:
            row = await OutboxEvent.get(id=event_id)
            if row.status != OutboxStatus.PENDING:
                return row.status.value
            await asyncio.sleep(0.02)


async def test_a_queued_event_wakes_the_worker_in_the_same_process(rt, member, tmp_path):
    rt = with_settings(rt, jsonl_root=str(tmp_path))
    partner = await make_partner(rt, "Wake Co", "jsonl", {"directory": "wake"})
    stop = asyncio.Event()
    worker = await _waiting_worker(rt, stop)
    try:
        event_id = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
        assert await _delivered(event_id) == "DELIVERED"
    finally:
        stop.set()
        await worker


async def test_an_event_committed_elsewhere_wakes_the_worker_by_notify(rt, member, tmp_path):
    """PostgreSQL: the writer shares nothing in memory with the worker (its own runtime), and
    writes in a transaction: the NOTIFY arrives at commit."""
    if connections.get("default").capabilities.dialect != "postgres":
        pytest.skip("NOTIFY is PostgreSQL's; SQLite workers poll or wake in-process")
    rt = with_settings(rt, jsonl_root=str(tmp_path))
    partner = await make_partner(rt, "Notify Co", "jsonl", {"directory": "notify"})
    writer = dataclasses.replace(rt, extras={})
    stop = asyncio.Event()
    worker = await _waiting_worker(rt, stop)
    try:
        async with in_transaction("default") as conn:
            event_id = await enqueue(
                writer, conn, partner_id=str(partner.id), member_id=None,
                type="member.erasure", member={"ref": partner_ref(rt.keys, str(partner.id), "x")},
                fields=["FULL_NAME"], purpose=partner.purpose, legal_basis="CONTRACT", key=None)
        assert await _delivered(event_id) == "DELIVERED"
    finally:
        stop.set()
        await worker
