"""Scratch stores for one benchmark run: a temporary data directory and, with ``--pg``, a fresh
pair of PostgreSQL databases (main and vault) that :func:`drop_scratch` removes afterwards."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["pg_admin", "scratch_store", "drop_scratch"]


async def pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def scratch_store(pg_url: str | None, name: str) -> tuple[Path, dict[str, Any], list[str]]:
    """The data directory, the Settings overrides pointing at the databases, and their names."""
    tmp = Path(tempfile.mkdtemp(prefix=f"consentry-bench-{name}-"))
    if not pg_url:
        return tmp, {}, []
    tag = uuid.uuid4().hex[:8]
    dbs = [f"bench_{name}_{tag}", f"bench_{name}_{tag}_vault"]
    for db in dbs:
        await pg_admin(pg_url, f'CREATE DATABASE "{db}"')
    base = pg_url.rpartition("/")[0]
    return tmp, {"database_url": f"{base}/{dbs[0]}", "vault_database_url": f"{base}/{dbs[1]}"}, dbs


async def drop_scratch(pg_url: str | None, dbs: list[str]) -> None:
    for db in dbs:
        await pg_admin(pg_url or "", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
