"""The audit trail with writers that never wait on each other: entries are appended without a
lock and chained afterwards, and verify still catches every edit, deletion and reordering."""

from __future__ import annotations

import asyncio

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from api.platform import audit
from api.platform.audit import chain_pending, unchained, verify_chain
from tests.helpers_consent import raw_sql


def _postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def _write_while_chaining(rt, writers: int = 6, steps: int = 5) -> None:
    """Several tasks append in their own transactions while a chainer keeps linking."""
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for step in range(steps):
            async with in_transaction("default") as conn:
                await audit.record(rt, f"test:{n}", "test.step", f"{n}:{step}", {"n": n},
                                   using=conn)
            await asyncio.sleep(0)

    async def chainer() -> None:
        while not done.is_set():
            await chain_pending(batch=4)
            await asyncio.sleep(0)

    task = asyncio.create_task(chainer())
    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(writers))), timeout=60)
    done.set()
    await task
    await chain_pending()


async def test_concurrent_writers_chain_into_one_intact_trail(rt):
    await _write_while_chaining(rt)
    assert await unchained() == 0
    assert await verify_chain() == (30, None)


@pytest.mark.parametrize(("sql", "values", "reason"), [
    ("UPDATE audit_entries SET actor = $1 WHERE pos = $2", ("test:forged", 12), "content"),
    ("DELETE FROM audit_entries WHERE pos = $1", (12,), "missing"),
    ("UPDATE audit_entries SET pos = $1 WHERE pos = $2", (10_000, 12), "missing"),
], ids=["edit", "delete", "move"])
async def test_verify_catches_tampering_under_concurrent_writers(rt, sql, values, reason):
    await _write_while_chaining(rt)
    await raw_sql(None, sql, *values)
    await _write_while_chaining(rt, writers=3, steps=2)  # the chain keeps growing after it
    checked, broken = await verify_chain()
    assert (checked, broken.seq) == (11, 12)
    assert reason in broken.reason


async def test_verify_catches_two_entries_swapped_under_concurrent_writers(rt):
    await _write_while_chaining(rt)
    await raw_sql(None, "UPDATE audit_entries SET pos = $1 WHERE pos = $2", -1, 12)
    await raw_sql(None, "UPDATE audit_entries SET pos = $1 WHERE pos = $2", 12, 14)
    await raw_sql(None, "UPDATE audit_entries SET pos = $1 WHERE pos = $2", 14, -1)
    checked, broken = await verify_chain()
    assert (checked, broken.seq) == (11, 12)
    assert "previous-hash" in broken.reason


async def test_an_open_transaction_does_not_hold_up_other_writers(rt):
    """PostgreSQL (SQLite has one writer by design): a transaction that appended and has not
    committed does not block another writer's append or the chaining; it is chained after
    its commit, in the next place, and the trail verifies."""
    if not _postgres():
        pytest.skip("SQLite serialises writers itself")
    appended, release = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:
        async with in_transaction("default") as slow:
            await audit.record(rt, "test:slow", "test.step", "slow", using=slow)
            appended.set()
            await release.wait()

    task = asyncio.create_task(slow_writer())
    await asyncio.wait_for(appended.wait(), timeout=10)
    await asyncio.wait_for(audit.record(rt, "test:fast", "test.step", "fast"), timeout=10)
    assert await verify_chain() == (1, None)
    release.set()
    await task
    assert await unchained() == 1
    assert await chain_pending() == 1
    assert await verify_chain() == (2, None)
    rows = await raw_rows("SELECT subject FROM audit_entries ORDER BY pos")
    assert rows == ["fast", "slow"]


async def raw_rows(sql: str) -> list[str]:
    conn = connections.get("default")
    return [r["subject"] for r in await conn.execute_query_dict(sql)]
