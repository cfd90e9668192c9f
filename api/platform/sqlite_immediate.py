"""SQLite transactions that take the write lock when they begin (``BEGIN IMMEDIATE``).

tortoise begins SQLite transactions deferred: a transaction that reads and then writes must
upgrade its lock at the first write, and if another process (the worker beside the API, a
second ``jobs run``) committed in between, SQLite answers "database is locked" at once, without
waiting out the busy timeout. Taking the lock at ``BEGIN`` makes such a transaction wait its
turn instead. One process already runs its transactions one at a time on tortoise's single
SQLite connection, so this costs no concurrency there.

Named as the tortoise engine for SQLite URLs in :func:`api.platform.db.orm_config`. It
subclasses tortoise's SQLite transaction wrapper, which is not public API: tortoise-orm is
bounded to the tested minor release in ``pyproject.toml``.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError

__all__ = ["ImmediateSqliteClient", "client_class"]


class _ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransaction(self), self._lock)


client_class = ImmediateSqliteClient
