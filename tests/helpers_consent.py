"""Small helpers shared by the consent, policy, cookie, receipt and audit tests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tortoise import connections

from tests.conftest import LOGIN, PASSWORD, PG_URL

ROOT = Path(__file__).resolve().parent.parent


async def fresh_token(gql, user_id: str) -> str:
    """Sign in again (access tokens last minutes; tests move the clock by days)."""
    body = await gql(LOGIN, {"u": user_id, "p": PASSWORD})
    assert "errors" not in body, body
    return body["data"]["login"]["accessToken"]


@dataclass
class CliStore:
    """Where an end-to-end ``consentry`` run keeps its data.

    PostgreSQL: the test run's own databases. SQLite: a private data directory, never the
    session's database file: a test that reads that file's bytes in this process drops the
    POSIX locks of our open connection, after which a CLI process that exits can remove the WAL
    our connection still writes to.
    """

    env: dict[str, str]
    sqlite_file: Path | None


def cli_store(rt, tmp_path: Path) -> CliStore:
    env = dict(os.environ)
    env.pop("CONSENTRY_NOW", None)
    if PG_URL:
        s = rt.settings
        env.update(CONSENTRY_DATA_DIR=str(s.data_dir), CONSENTRY_DATABASE_URL=s.main_url,
                   CONSENTRY_VAULT_DATABASE_URL=s.vault_url)
        return CliStore(env, None)
    env.pop("CONSENTRY_DATABASE_URL", None)
    env.pop("CONSENTRY_VAULT_DATABASE_URL", None)
    env["CONSENTRY_DATA_DIR"] = str(tmp_path)
    return CliStore(env, tmp_path / "consentry.sqlite3")


async def run_cli(store: CliStore, *args: str, stdin: str | None = None,
                  now: datetime | None = None, python: str | None = None) -> tuple[int, str, str]:
    """``python -m api.service.cli ARGS`` (or ``python -c PYTHON``) with the store's environment."""
    env = dict(store.env)
    if now is not None:
        env["CONSENTRY_NOW"] = now.isoformat()
    argv = ["-c", python] if python else ["-m", "api.service.cli", *args]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode, out.decode(), err.decode()


async def raw_sql(store: CliStore | None, sql: str, *values: object) -> None:
    """Change the database the way an intruder would: raw SQL, no application code.

    Placeholders are written ``$1, $2...``; SQLite gets them as ``?``.
    """
    if store is not None and store.sqlite_file is not None:
        for n in range(len(values), 0, -1):
            sql = sql.replace(f"${n}", "?")
        db = sqlite3.connect(store.sqlite_file)
        try:
            db.execute(sql, values)
            db.commit()
        finally:
            db.close()
        return
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        for n in range(len(values), 0, -1):
            sql = sql.replace(f"${n}", "?")
    await conn.execute_query(sql, list(values))
