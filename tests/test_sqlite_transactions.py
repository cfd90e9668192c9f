"""On SQLite a transaction takes the write lock when it begins, so a read-then-write transaction
is never refused because another process wrote in between ("database is locked" at once,
without waiting out the busy timeout): it is the other writer that waits its turn."""

from __future__ import annotations

import sqlite3

import pytest
from tortoise.transactions import in_transaction

from api.models.ops import JobLease


def _other_process_writes(path: str) -> None:
    """A second connection, as the worker beside the API would hold: no waiting at all."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("UPDATE job_leases SET holder = 'other' WHERE name = 'x'")
    finally:
        other.close()


async def test_a_reading_transaction_holds_the_write_lock_until_it_ends(rt, clock):
    url = rt.settings.main_url
    if not url.startswith("sqlite://"):
        pytest.skip("PostgreSQL locks rows, not the database")
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    await JobLease.create(name="x", holder="me", until=clock.now())

    async with in_transaction("default") as conn:
        lease = await JobLease.get(name="x", using_db=conn)  # read first: the case that failed
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _other_process_writes(path)  # refused: this transaction already holds the lock
        await JobLease.filter(name="x").using_db(conn).update(holder=lease.holder + "+")

    _other_process_writes(path)  # free again once it ended
    assert (await JobLease.get(name="x")).holder == "other"
