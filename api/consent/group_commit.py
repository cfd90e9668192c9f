"""Group commit: consent changes that arrive together are written in one transaction.

A give or a withdrawal is decided exactly as it would be alone: under the member's lock, against
its latest event for the purpose, in arrival order (a change sees the ones queued before it;
``api/consent/batch.py``). Each change that records something still gets its own event,
signed receipt and audit entry. What the changes share is the transaction and its statements,
whose cost is per round trip: members, data keys and latest events read at once, every event
and its audit entry written by one statement (PostgreSQL) or two, chained at once (SQLite).

Changes queue per runtime (its process-wide ``extras``) and event loop; changes that arrive
while a batch commits form the next (at most ``MAX_BATCH``), so a lone change commits at once
and a busy process amortises each commit over many. A change answers when its batch has
committed. When a batch fails as a whole (a database error, a data key that cannot be opened),
each of its changes is tried again alone, so only the change that fails gets the error.

SQLite (one writer): one drainer hands batch after batch to the connection's own thread
(``api/consent/batch_sqlite.py``), one hop per call instead of one per statement; batches
commit one after another. PostgreSQL: up to ``IN_FLIGHT`` batches at once, each on its own
pooled connection (``api/consent/batch_pg.py``); each locks its members and reads their latest
events once the locks are granted, so each change is still decided against every change
committed before it, and a member's changes wait while a batch holding that member is in
flight, so they commit in arrival order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from functools import partial

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient

from api.consent import batch_pg, batch_sqlite
from api.consent.batch import MAX_BATCH, Change, Outcome
from api.consent.views import ConsentView
from api.platform.runtime import Runtime
from api.platform.sqlite_immediate import ImmediateSqliteClient

__all__ = ["Change", "MAX_BATCH", "IN_FLIGHT", "submit"]

_QUEUE = "consent.group_commit"
IN_FLIGHT = 3


async def submit(change: Change) -> tuple[ConsentView, bool]:
    """Queue ``change`` and wait for its batch to commit."""
    return await _queue(change.rt).submit(change)


class _Queue:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Appended on the loop; taken on the loop, or by the drainer on SQLite's thread.
        self.pending: deque[Change] = deque()
        self.drainer: asyncio.Task[None] | None = None  # SQLite
        self.flights: set[asyncio.Task[None]] = set()  # PostgreSQL's batches in flight
        self.busy: set[str] = set()  # the members of those batches

    async def submit(self, change: Change) -> tuple[ConsentView, bool]:
        client = connections.get("default")
        if isinstance(client, TransactionalDBClient):
            raise RuntimeError("a consent change commits in a transaction of its own, "
                               "not inside the caller's")
        self.pending.append(change)
        if isinstance(client, ImmediateSqliteClient):
            if self.drainer is None:
                self.drainer = self.loop.create_task(self._drain(client))
        else:
            self._fly(client)
        return await change.done

    # --- SQLite ----------------------------------------------------------------------------
    async def _drain(self, client: ImmediateSqliteClient) -> None:
        try:
            while self.pending:
                await client.run_alone(partial(batch_sqlite.drain, pending=self.pending,
                                               settle=self._settle_from_thread))
        except BaseException as exc:  # cancelled with the loop: nobody may wait forever
            while self.pending:
                _settle(self.pending.popleft(), exc)
            raise
        finally:
            self.drainer = None

    def _settle_from_thread(self, batch: Sequence[Change], outcomes: Sequence[Outcome]) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle_all, batch, outcomes)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass

    # --- PostgreSQL ------------------------------------------------------------------------
    def _fly(self, client: BaseDBAsyncClient) -> None:
        while self.pending and len(self.flights) < IN_FLIGHT:
            batch = self._take_free()
            if not batch:
                return
            members = {c.member_id for c in batch}
            self.busy |= members
            flight = self.loop.create_task(self._flight(client, batch, members))
            self.flights.add(flight)
            flight.add_done_callback(self.flights.discard)

    def _take_free(self) -> list[Change]:
        """The oldest changes (at most ``MAX_BATCH``) of members no batch in flight holds; the
        others stay queued in order, so each member's changes commit in arrival order."""
        batch: list[Change] = []
        kept: list[Change] = []
        while self.pending and len(batch) < MAX_BATCH:
            change = self.pending.popleft()
            (kept if change.member_id in self.busy else batch).append(change)
        self.pending.extendleft(reversed(kept))
        return batch

    async def _flight(self, client: BaseDBAsyncClient, batch: list[Change],
                      members: set[str]) -> None:
        try:
            await self._commit(client, batch)
        except BaseException as exc:  # cancelled with the loop: nobody may wait forever
            while self.pending:
                _settle(self.pending.popleft(), exc)
            raise
        finally:
            self.busy -= members
        self.flights.discard(asyncio.current_task())
        self._fly(client)

    async def _commit(self, client: BaseDBAsyncClient, batch: list[Change]) -> None:
        try:
            outcomes = await batch_pg.write(client, batch)
        except Exception as exc:  # the whole transaction failed: retry alone, unless alone
            if len(batch) == 1:
                _settle(batch[0], exc)
            else:
                for change in batch:
                    await self._commit(client, [change])
            return
        except BaseException as exc:
            for change in batch:
                _settle(change, exc)
            raise
        _settle_all(batch, outcomes)


def _settle_all(batch: Sequence[Change], outcomes: Sequence[Outcome]) -> None:
    for change, outcome in zip(batch, outcomes, strict=True):
        _settle(change, outcome)


def _settle(change: Change, outcome: Outcome) -> None:
    if change.done.done():  # its request was cancelled; the change stands (retries are safe)
        return
    if isinstance(outcome, asyncio.CancelledError):
        change.done.cancel()
    elif isinstance(outcome, BaseException):
        change.done.set_exception(outcome)
    else:
        change.done.set_result(outcome)


def _queue(rt: Runtime) -> _Queue:
    loop = asyncio.get_running_loop()
    queue: _Queue | None = rt.extras.get(_QUEUE)
    if queue is None or queue.loop is not loop:
        queue = rt.extras[_QUEUE] = _Queue(loop)
    return queue
