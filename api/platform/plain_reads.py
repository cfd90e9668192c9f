"""Reads on the hottest path as plain rows: one fixed statement, values instead of models.

``me`` is the most frequent request, and building its queries (pypika) and a model instance
per row cost more than the GraphQL layer above it. The reads here send SQL text fixed per
dialect and convert the few columns they need exactly as tortoise converts them (datetimes
aware in the ORM's zone), so callers get the same values the ORM would give.

Statements are written with ``$1``-style parameters (PostgreSQL); SQLite gets ``?1``. They
run on the model's connection as tortoise routes it: inside ``in_transaction`` they read the
transaction's view, as the ORM query they replace did.

SQLite, outside a transaction: tortoise runs every statement on its connection's own thread,
and that hop (a queue, a wake-up of the loop, the GIL handed back and forth) cost more than a
point read itself. These reads go instead through a read-only connection of the same file
used directly on the event loop. In WAL mode a reader never waits for a writer and sees every
committed transaction; it is opened with no busy timeout, so it never blocks the loop: when it
cannot answer at once (busy, another thread, the file not there yet), the statement runs
through tortoise's connection as before, which raises the errors callers expect. It refuses
writes (``query_only``) and is closed by ``api.platform.db.close_db`` before tortoise's.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import weakref
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.models import Model

__all__ = ["fetch", "fetch_shared", "for_dialect", "as_datetime", "close_readers"]

_DATETIME = fields.DatetimeField()
# Keyed by tortoise's aiosqlite connection: a reconnect (or a new store) gets a new reader,
# and a reader goes when the connection it shadows is gone.
_READERS: weakref.WeakKeyDictionary[Any, sqlite3.Connection | None] = (
    weakref.WeakKeyDictionary())


@functools.cache
def for_dialect(sql: str, dialect: str) -> str:
    """``sql`` written with ``$1``-style parameters, as ``dialect`` takes them: SQLite binds
    ``?1`` by number, so a parameter may appear more than once in either."""
    return sql.replace("$", "?") if dialect == "sqlite" else sql


def _open(filename: str) -> sqlite3.Connection | None:
    if not filename or filename == ":memory:" or filename.startswith("file:"):
        return None  # a private in-memory store, or a URI we do not second-guess
    try:
        # Not mode=ro: a read-only connection cannot checkpoint, and the last connection to
        # close must fold the WAL into the file (backups copy the file alone). query_only
        # refuses every write.
        conn = sqlite3.connect(f"{Path(filename).resolve().as_uri()}?mode=rw", uri=True,
                               isolation_level=None)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA busy_timeout = 0")
        return conn
    except sqlite3.Error:
        return None


def close_readers() -> None:
    """Close every read-only twin (``close_db`` calls this first, so tortoise's connection is
    the last to close and checkpoints the WAL)."""
    for reader in list(_READERS.values()):
        if reader is not None:
            reader.close()
    _READERS.clear()


def _reader(db: BaseDBAsyncClient) -> sqlite3.Connection | None:
    """The read-only twin of ``db``'s SQLite connection; None inside a transaction (which must
    read its own writes) and before tortoise has connected."""
    inner = getattr(db, "_connection", None)
    if inner is None or isinstance(db, TransactionalDBClient):
        return None
    try:
        return _READERS[inner]
    except KeyError:
        reader = _READERS[inner] = _open(str(getattr(db, "filename", "")))
        return reader


async def fetch(model: type[Model], sql: str, *params: Any) -> Sequence[Any]:
    """Rows of ``sql`` (as tuples: read them by position) on ``model``'s connection."""
    db = model._meta.db
    dialect = db.capabilities.dialect
    text = for_dialect(sql, dialect)
    if dialect == "sqlite":
        reader = _reader(db)
        if reader is not None:
            try:
                return reader.execute(text, params).fetchall()
            except sqlite3.Error:  # busy, no schema yet, another thread: tortoise's connection
                _READERS.pop(db._connection, None)  # answers; the next read opens a new one
    _, rows = await db.execute_query(text, list(params))
    return rows


# Reads on their way to the database, per event loop, by connection, statement and values.
_FLIGHTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                    dict[tuple[Any, ...], asyncio.Task[Sequence[Any]]]] = (
    weakref.WeakKeyDictionary())


async def fetch_shared(model: type[Model], sql: str, *params: Any) -> Sequence[Any]:
    """:func:`fetch` for a read that many callers make at once with the same values (every
    change of a consent batch asks which partners its purpose concerns as the batch commits):
    a caller that asks while the same read is on its way to the database waits for that one
    instead of sending its own. Its answer can predate the ask by that one round trip, no
    more (nothing is kept once the read is answered), so use it only where that is harmless;
    the callers share the rows, to read, not to change. Inside a transaction, and on SQLite's
    read-only twin (a read costs microseconds there), the read is simply made."""
    db = model._meta.db
    if isinstance(db, TransactionalDBClient) or (
            db.capabilities.dialect == "sqlite" and _reader(db) is not None):
        return await fetch(model, sql, *params)
    flights = _FLIGHTS.setdefault(asyncio.get_running_loop(), {})
    key = (db, sql, params)
    flight = flights.get(key)
    if flight is None:
        flight = flights[key] = asyncio.ensure_future(fetch(model, sql, *params))
        flight.add_done_callback(functools.partial(_landed, flights, key))
    # A caller that gives up does not cancel the read the others wait for.
    return await asyncio.shield(flight)


def _landed(flights: dict[tuple[Any, ...], asyncio.Task[Sequence[Any]]], key: tuple[Any, ...],
            flight: asyncio.Task[Sequence[Any]]) -> None:
    if flights.get(key) is flight:
        del flights[key]
    if not flight.cancelled():
        flight.exception()  # seen: every waiter has it, or none was left to


def as_datetime(value: Any) -> datetime:
    """A stored datetime as the ORM returns it: PostgreSQL gives datetimes, SQLite the text
    tortoise wrote (``isoformat(" ")``), parsed here by the standard library."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            pass  # not ours: the ORM's own parser decides
    converted = _DATETIME.to_python_value(value)
    assert converted is not None
    return converted
