"""How batches of consent changes are run.

SQLite: each batch is one ``BEGIN IMMEDIATE`` transaction on the connection's own thread; a
drain writes batch after batch without a hop to the event loop between them, answering each
batch as it commits; a batch that cannot get the write lock fails every change in it (and
records nothing), and the next one writes. PostgreSQL: batches of different members are in
flight at once, and a member's changes wait for the batch holding that member.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections import deque
from functools import partial

import pytest
from tortoise import connections
from tortoise.exceptions import TransactionManagementError

from api.consent import batch_sqlite, group_commit, policy
from api.consent import consents as consent
from api.consent.batch import MAX_BATCH, Change
from api.consent.purposes import get_purpose
from api.models.audit import AuditEntry
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState
from api.platform import audit, db
from api.platform.sqlite_immediate import ImmediateSqliteClient, immediate
from bench.seed import bulk_members


@pytest.fixture
def client(rt) -> ImmediateSqliteClient:
    found = connections.get("default")
    if not isinstance(found, ImmediateSqliteClient):
        pytest.skip("SQLite only: PostgreSQL batches stay on the event loop")
    return found


def _path(rt) -> str:
    return rt.settings.main_url.removeprefix("sqlite://").split("?", 1)[0]


async def test_one_drain_writes_batch_after_batch_each_against_the_last(rt, client):
    """More changes than one batch holds: one call writes them all, in arrival order, each
    batch answered on its own, each change decided against every change committed before."""
    (member,) = await bulk_members(rt, 1, prefix="cb")
    marketing = await get_purpose("marketing")
    assert marketing is not None
    count = 2 * MAX_BATCH + 2
    states = [ConsentState.GIVEN if i % 2 == 0 else ConsentState.WITHDRAWN for i in range(count)]
    pending = deque(Change(rt, member, marketing, state, "1.0") for state in states)
    answered: list[list[tuple[object, bool]]] = []

    def settle(batch, outcomes):  # on the connection's thread, as each batch commits
        answered.append(list(outcomes))

    await client.run_alone(partial(batch_sqlite.drain, pending=pending, settle=settle))
    assert not pending
    assert [len(a) for a in answered] == [MAX_BATCH, MAX_BATCH, 2]
    views = [view for batch in answered for view, new in batch if new]
    assert [v.state for v in views] == states
    events = await ConsentEvent.filter(member_id=member).order_by("at", "id")
    assert [str(e.id) for e in events] == [v.id for v in views]
    assert await audit.verify_chain(chain_first=False) == (count, None)


async def test_a_batch_that_cannot_lock_fails_whole_and_the_next_one_writes(rt, client):
    """Another process holds the write lock past the busy timeout: every change of the batch
    gets the error and nothing is recorded; once the lock is free, the same changes write."""
    first, second = await bulk_members(rt, 2, prefix="cb")
    await policy.in_force(rt)
    await client.execute_script("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(_path(rt), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        answers = await asyncio.gather(consent.give(rt, first, "research", "1.0"),
                                       consent.give(rt, second, "research", "1.0"),
                                       return_exceptions=True)
        assert [type(a) for a in answers] == [TransactionManagementError] * 2
        other.execute("ROLLBACK")
        assert await ConsentEvent.all().count() == 0
        assert await AuditEntry.all().count() == 0
        answers = await asyncio.gather(consent.give(rt, first, "research", "1.0"),
                                       consent.give(rt, second, "research", "1.0"))
        assert [a.member_id for a in answers] == [first, second]
    finally:
        other.close()
        await client.execute_script("PRAGMA busy_timeout = 5000")
    assert await audit.verify_chain(chain_first=False) == (2, None)


async def test_work_on_the_thread_keeps_the_connection_even_when_its_caller_gives_up(
        rt, client):
    """A call the thread has taken cannot be taken back: cancelling its caller must not let a
    tortoise transaction begin on the connection until the call has returned."""
    started, go = threading.Event(), threading.Event()

    def work(conn: sqlite3.Connection) -> int:
        started.set()
        go.wait(10)
        return int(conn.execute("SELECT 1").fetchone()[0])

    call = asyncio.create_task(client.run_alone(work))
    assert await asyncio.to_thread(started.wait, 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert client._lock.locked()  # still the thread's: nothing else may use the connection
    go.set()
    assert await client.execute_query_dict("SELECT 2 AS two") == [{"two": 2}]
    assert not client._lock.locked()


async def test_a_batch_holds_the_write_lock_from_its_first_statement(rt, client):
    """``BEGIN IMMEDIATE``: once a batch has read, another process cannot write before it
    commits (it would make the batch's read stale, and its own write fail as "locked")."""
    refused: list[str] = []

    def work(conn: sqlite3.Connection) -> None:
        with immediate(conn):
            conn.execute('SELECT COUNT(*) FROM "consent_events"').fetchone()
            other = sqlite3.connect(_path(rt), timeout=0, isolation_level=None)
            try:
                other.execute('DELETE FROM "consent_events" WHERE 0')
            except sqlite3.OperationalError as exc:
                refused.append(str(exc))
            finally:
                other.close()

    await client.run_alone(work)
    assert refused == ["database is locked"]


async def test_the_wal_is_not_cut_back_after_every_checkpoint(rt, client):
    rows = await client.execute_query_dict("PRAGMA journal_size_limit")
    assert list(rows[0].values()) == [db.WAL_SIZE_LIMIT]


async def test_postgres_batches_overlap_and_keep_each_members_order(rt):
    """A batch waiting on a member's lock (held here by another session) holds back neither
    another member's change, which commits meanwhile, nor the order of its own member's
    changes: the next one waits for it, then is decided against it."""
    if connections.get("default").capabilities.dialect != "postgres":
        pytest.skip("SQLite batches commit one after another on one writer")
    import asyncpg

    first, second = await bulk_members(rt, 2, prefix="cb")
    marketing = await get_purpose("marketing")
    assert marketing is not None
    await consent.give(rt, first, "marketing", "1.0")
    other = await asyncpg.connect(rt.settings.main_url)
    try:
        await other.execute("BEGIN")
        await other.execute('SELECT 1 FROM "members" WHERE "id" = $1 FOR UPDATE',
                            uuid.UUID(first))
        withdrawn = asyncio.create_task(group_commit.submit(
            Change(rt, first, marketing, ConsentState.WITHDRAWN, "1.0")))
        given_again = asyncio.create_task(group_commit.submit(
            Change(rt, first, marketing, ConsentState.GIVEN, "1.0")))
        # A guard against a hang, not a timing: this batch must not wait for the lock.
        view, new = await asyncio.wait_for(group_commit.submit(
            Change(rt, second, marketing, ConsentState.GIVEN, "1.0")), 30)
        assert (view.member_id, new) == (second, True)
        assert not withdrawn.done() and not given_again.done()
        held = group_commit._queue(rt).pending  # not sent: its member has a batch in flight
        assert [(c.member_id, c.state) for c in held] == [(first, ConsentState.GIVEN)]
    finally:
        await other.execute("ROLLBACK")
        await other.close()
    (w, w_new), (g, g_new) = await withdrawn, await given_again
    assert (w.state, w_new, g.state, g_new) == (ConsentState.WITHDRAWN, True,
                                                ConsentState.GIVEN, True)
    events = await ConsentEvent.filter(member_id=first).order_by("at", "id")
    assert [(e.state, str(e.id)) for e in events][1:] == [(ConsentState.WITHDRAWN, w.id),
                                                          (ConsentState.GIVEN, g.id)]


async def test_a_batch_behind_unchained_entries_chains_them_first_in_order(rt, client):
    """SQLite chains at once, but an entry left unchained (appended the PostgreSQL way, or
    before the chain was sequenced) must not be skipped: the batch's own entries go after
    it, every link checks, and the unchained one keeps its place by ``seq``."""
    (member,) = await bulk_members(rt, 1, prefix="cu")
    await connections.get("default").execute_query(
        'INSERT INTO "audit_entries" ("at", "actor", "action", "subject", "detail", '
        """"prev_hash", "hash") VALUES ('2026-12-01 09:00:00+00:00', 'system', 'test.left', """
        """NULL, '{}', '', '')""")
    assert await audit.unchained() == 1

    await consent.give(rt, member, "marketing", (await policy.in_force(rt)).version)

    assert await audit.unchained() == 0
    checked, broken = await audit.verify_chain(chain_first=False)
    assert broken is None
    actions = [e.action for e in await AuditEntry.all().order_by("pos")][-2:]
    assert actions == ["test.left", "consent.give"]
