"""SQLite: batches of consent changes written on the connection's own thread.

Awaited, a batch's transaction was five hops between the event loop and aiosqlite's thread
(begin, read, insert the events, read the chain's head, insert the entries, commit), and each
return waited for a busy loop: the write path was bound by that latency, not by CPU. Here the
whole drain is one call on that thread (:meth:`ImmediateSqliteClient.run_alone`): each batch
is one ``BEGIN IMMEDIATE`` transaction (read, decide, insert, chain, commit), its changes are
answered (one callback to the loop) as soon as it commits, and the next batch is taken at
once, from changes that arrived meanwhile: the loop answers batch N while the thread commits
N+1. Batches still run one at a time, so each change is decided against every committed
one, and a batch that fails as a whole is tried again change by change before the next.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Sequence

from tortoise.exceptions import TransactionManagementError

from api.consent.batch import LATEST_COLUMNS, Change, Outcome, decide, read_back, take
from api.models.consent import ConsentEvent
from api.platform import audit
from api.platform.sqlite_immediate import immediate

__all__ = ["drain", "BATCHES_PER_CALL", "READ"]

# Batches one call may write before it lets other users of the connection have it back.
BATCHES_PER_CALL = 8

Settle = Callable[[Sequence[Change], Sequence[Outcome]], None]

# Members, keys and latest events in one statement (one writer: nothing to lock row by row).
# The latest event: the last ``at`` of the pair (the end of its (member, purpose, at) index),
# then the greatest id among the events of that instant. Never a sort of the pair's history,
# which grows with every change.
READ = (
    'WITH p("member_id", "purpose") AS (VALUES {pairs}) '  # noqa: S608 (constants)
    f'SELECT {LATEST_COLUMNS} FROM p '
    'JOIN "members" m ON m."id" = p."member_id" JOIN "member_keys" k ON k."member_id" = m."id" '
    'LEFT JOIN "consent_events" e ON e."id" = (SELECT l."id" FROM "consent_events" l '
    'WHERE l."member_id" = p."member_id" AND l."purpose" = p."purpose" '
    'AND l."at" = (SELECT MAX(x."at") FROM "consent_events" x '
    'WHERE x."member_id" = p."member_id" AND x."purpose" = p."purpose") '
    'ORDER BY l."id" DESC LIMIT 1)')


def drain(conn: sqlite3.Connection, pending: deque[Change], settle: Settle,
          batches: int = BATCHES_PER_CALL) -> None:
    """Write up to ``batches`` batches taken from ``pending``, each answered through
    ``settle`` once it has committed (or failed). Runs on the connection's thread."""
    for _ in range(batches):
        batch = take(pending)
        if not batch:
            return
        _commit(conn, batch, settle)


def _commit(conn: sqlite3.Connection, batch: list[Change], settle: Settle) -> None:
    try:
        outcomes = _write(conn, batch)
    except TransactionManagementError as exc:  # no lock within the busy timeout: no change's
        settle(batch, [exc] * len(batch))       # fault, and alone each would wait it out again
        return
    except Exception as exc:  # the whole transaction failed: retry alone, unless alone
        if len(batch) == 1:
            settle(batch, [exc])
        else:
            for change in batch:
                _commit(conn, [change], settle)
        return
    except BaseException as exc:
        settle(batch, [exc] * len(batch))
        raise
    settle(batch, outcomes)


def _write(conn: sqlite3.Connection, batch: Sequence[Change]) -> list[Outcome]:
    pairs = sorted({(c.member_id, c.purpose.name) for c in batch})
    with immediate(conn):
        found = conn.execute(READ.format(pairs=", ".join("(?, ?)" for _ in pairs)),
                             [v for pair in pairs for v in pair]).fetchall()
        members, latest = read_back(found)
        outcomes, rows, entries = decide(batch, members, latest)
        if rows:
            audit.record_rows_sqlite(conn, ConsentEvent, rows, entries)
    return outcomes
