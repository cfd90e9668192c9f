"""PostgreSQL: a batch of consent changes in four round trips, on one pooled connection.

Through tortoise's transaction a batch was five (``BEGIN``, lock the members, read the latest
events, insert, ``COMMIT``), each through its wrappers. Here ``BEGIN`` travels with the lock
in one simple-protocol message (the member ids, canonical UUIDs, are written into it), and
the members' status and keys are read with their latest events by the next statement, which
starts after the locks are granted (a statement's snapshot predates its own locks, so the
read cannot be the locking statement): read committed, locked, it sees every change committed
before. Then every event and audit entry in one statement (``audit.record_rows_pg``), and
``COMMIT``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

from api.consent.batch import LATEST_COLUMNS, Change, Outcome, decide, read_back
from api.models.consent import ConsentEvent
from api.platform import audit

__all__ = ["write"]

# Locked in id order, so two batches never wait on each other in a cycle.
_LOCK = ('BEGIN; SELECT 1 FROM "members" WHERE "id" IN ({ids}) ORDER BY "id" '
         'FOR UPDATE')
# The latest event: the last ``at`` of the pair (the end of its (member, purpose, at) index),
# then the greatest id among the events of that instant. ``ORDER BY at DESC, id DESC LIMIT 1``
# sorted the pair's whole history whenever the planner's statistics lagged behind a growing
# table (4 ms for a thousand events, in the write benchmark).
_READ = (
    f'SELECT {LATEST_COLUMNS} '  # noqa: S608 (constants)
    'FROM unnest($1::uuid[], $2::text[]) AS p("member_id", "purpose") '
    'JOIN "members" m ON m."id" = p."member_id" JOIN "member_keys" k ON k."member_id" = m."id" '
    'LEFT JOIN LATERAL (SELECT l."id", l."state", l."policy_version", l."at", l."receipt" '
    'FROM "consent_events" l WHERE l."member_id" = p."member_id" AND l."purpose" = p."purpose" '
    'AND l."at" = (SELECT MAX(x."at") FROM "consent_events" x '
    'WHERE x."member_id" = p."member_id" AND x."purpose" = p."purpose") '
    'ORDER BY l."id" DESC LIMIT 1) e ON TRUE')


async def write(client: BaseDBAsyncClient, batch: Sequence[Change]) -> list[Outcome]:
    """One transaction: each change's answer, or the domain error it alone gets."""
    pairs = sorted({(c.member_id, c.purpose.name) for c in batch})
    # Canonical UUID text only: the one value written into SQL rather than bound.
    ids = ", ".join(f"'{uuid.UUID(m)}'" for m in sorted({m for m, _ in pairs}))
    async with client.acquire_connection() as con:
        try:
            await con.execute(_LOCK.format(ids=ids))
            found = await con.fetch(_READ, [m for m, _ in pairs], [p for _, p in pairs])
            members, latest = read_back(found)
            outcomes, rows, entries = decide(batch, members, latest)
            if rows:
                sql, values = audit.record_rows_pg(ConsentEvent, rows, entries)
                await con.execute(sql, *values)
            await con.execute("COMMIT")
        except Exception as exc:  # (a cancelled batch is rolled back as the pool takes it back)
            if not con.is_closed() and con.is_in_transaction():
                await con.execute("ROLLBACK")
            translated = _translated(exc)
            if translated is exc:
                raise
            raise translated from exc
    return outcomes


def _translated(exc: Exception) -> Exception:
    """The errors tortoise's own statements raise, so a change that fails alone fails alike."""
    if isinstance(exc, asyncpg.SyntaxOrAccessError | asyncpg.exceptions.DataError):
        return OperationalError(exc)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(exc)
    if isinstance(exc, asyncpg.InvalidTransactionStateError):
        return TransactionManagementError(exc)
    return exc

