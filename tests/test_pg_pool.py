"""PostgreSQL pool connections are taken back without asyncpg's reset query
(api/platform/db.py): what the app relies on still holds.
"""

from __future__ import annotations

import pytest
from tortoise import connections


async def test_a_connection_taken_back_mid_transaction_is_rolled_back(rt):
    db = connections.get("default")
    if db.capabilities.dialect != "postgres":
        pytest.skip("the pool is PostgreSQL's")
    pool = db._pool
    conn = await pool.acquire()
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    await conn.execute("BEGIN")
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS pool_probe (x int) ON COMMIT DROP")
    await pool.release(conn)  # still inside the transaction
    held = []
    again = await pool.acquire()
    while await again.fetchval("SELECT pg_backend_pid()") != backend:  # the same session
        held.append(again)
        again = await pool.acquire()
    try:
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT to_regclass('pg_temp.pool_probe')") is None
    finally:
        for c in [again, *held]:
            await pool.release(c)
