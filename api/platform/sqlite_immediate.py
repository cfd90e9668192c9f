"""SQLite transactions that take the write lock when they begin (``BEGIN IMMEDIATE``), and
work run whole on the connection's own thread.

tortoise begins SQLite transactions deferred: a transaction that reads and then writes must
upgrade its lock at the first write, and if another process (the worker beside the API, a
second ``jobs run``) committed in between, SQLite answers "database is locked" at once, without
waiting out the busy timeout. Taking the lock at ``BEGIN`` makes such a transaction wait its
turn instead. One process already runs its transactions one at a time on tortoise's single
SQLite connection, so this costs no concurrency there.

A hot write path (grouped consent changes) can also hand a whole unit of work to
:meth:`ImmediateSqliteClient.run_alone`: it runs on the thread that owns the connection, as
one call, while no tortoise transaction is open on it. Every statement of an awaited
transaction is a hop to that thread and back through the event loop, and each return waits
for the loop's turn; one call makes it one hop, and the commit's fsync still happens off the
loop. :func:`immediate` is the transaction such work opens.

Named as the tortoise engine for SQLite URLs in :func:`api.platform.db.orm_config`. It
subclasses tortoise's SQLite transaction wrapper and runs work on aiosqlite's connection
thread, neither public API: tortoise-orm and aiosqlite are bounded to the tested minor
releases in ``pyproject.toml``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

__all__ = ["ImmediateSqliteClient", "client_class", "immediate"]

T = TypeVar("T")


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

    async def run_alone(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` run on the connection's thread as one call, while nothing else
        uses the connection (tortoise's lock is held until it returns, even if the caller is
        cancelled meanwhile: the call cannot be taken back once the thread has it)."""
        await self._lock.acquire()
        try:
            if not self._connection:
                await self.create_connection(with_db=True)
            aio: Any = self._connection  # aiosqlite's private API: bounded in pyproject.toml
            call = asyncio.ensure_future(aio._execute(lambda: work(aio._conn)))
        except BaseException:
            self._lock.release()
            raise
        call.add_done_callback(lambda _: self._lock.release())
        result: T = await asyncio.shield(call)
        return result


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on the connection's thread,
    errors translated as tortoise translates them. A lock that cannot be had within the busy
    timeout is :class:`TransactionManagementError`, as for :class:`ImmediateSqliteClient`'s
    transactions: nothing was tried, so nothing the work holds is at fault."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise TransactionManagementError(exc) from exc
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.IntegrityError):
            raise IntegrityError(exc) from exc
        if isinstance(exc, sqlite3.OperationalError):
            raise OperationalError(exc) from exc
        raise


client_class = ImmediateSqliteClient
