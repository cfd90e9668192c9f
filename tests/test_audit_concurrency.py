"""Concurrent transactions that each append several audit entries neither deadlock nor fork."""

import asyncio

from tortoise.transactions import in_transaction

from api import audit
from api.audit import verify_chain


async def test_concurrent_multi_entry_transactions_keep_one_chain(rt):
    async def writer(n: int) -> None:
        async with in_transaction("default") as conn:
            for step in range(3):
                await audit.record(rt, f"test:{n}", "test.step", str(step), using=conn)

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(8))), timeout=30)
    checked, broken = await verify_chain()
    assert (checked, broken) == (24, None)
