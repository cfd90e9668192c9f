"""Group commit: consent changes that arrive together are written in one transaction.

A give or a withdrawal is decided exactly as it would be alone: under the member's lock, against
its latest event for the purpose, in arrival order (a change sees the ones queued before it).
Each change that records something still gets its own event, signed receipt and audit entry.
What the changes share is the transaction and its statements, whose cost is per round trip:
the members locked and their data keys read at once, the latest event of every (member,
purpose) read at once, then every event and its audit entry written by one statement
(PostgreSQL) or two, the entries chained at once (SQLite).

One batch runs at a time per runtime (its process-wide ``extras``) and event loop: changes
that arrive while it commits form the next one (at most ``MAX_BATCH``), so a lone change
commits at once and a busy process amortises each commit over many. A change answers when
its batch has committed. When a batch fails as a whole (a database error, a data key that
cannot be opened), each of its changes is tried again alone, so only the change that fails
gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent import receipts
from api.consent.purposes import PurposeView
from api.consent.views import ConsentView
from api.core.errors import Conflict, NotFound
from api.core.ordered_ids import ordered_uuid
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, MemberStatus
from api.platform import audit, plain_reads
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, unwrap

__all__ = ["Change", "MAX_BATCH", "submit"]

MAX_BATCH = 64
_QUEUE = "consent.group_commit"


@dataclass
class Change:
    """One give or withdrawal to decide; ``member_id`` is a canonical UUID string. Its event
    takes its time, keys and settings from ``rt`` (changes of several runtimes may share a
    batch)."""

    rt: Runtime
    member_id: str
    purpose: PurposeView
    state: ConsentState
    version: str
    client: str = ""
    user_agent: str = ""
    # The answer: the event (new, or the one already in force for a retry) and whether it is new.
    done: asyncio.Future[tuple[ConsentView, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


async def submit(change: Change) -> tuple[ConsentView, bool]:
    """Queue ``change`` and wait for its batch to commit."""
    return await _queue(change.rt).submit(change)


class _Queue:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[Change] = []
        self.task: asyncio.Task[None] | None = None

    async def submit(self, change: Change) -> tuple[ConsentView, bool]:
        self.pending.append(change)
        if self.task is None:
            self.task = self.loop.create_task(self._drain())
        return await change.done

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                await self._commit(batch)
        except BaseException as exc:  # cancelled with the loop: nobody may wait forever
            for change in self.pending:
                _settle(change, exc)
            self.pending = []
            raise
        finally:
            self.task = None

    async def _commit(self, batch: list[Change]) -> None:
        try:
            outcomes = await _write(batch)
        except Exception as exc:  # the whole transaction failed: retry alone, unless alone
            if len(batch) == 1:
                _settle(batch[0], exc)
            else:
                for change in batch:
                    await self._commit([change])
            return
        except BaseException as exc:
            for change in batch:
                _settle(change, exc)
            raise
        for change, outcome in zip(batch, outcomes, strict=True):
            _settle(change, outcome)


def _settle(change: Change, outcome: tuple[ConsentView, bool] | BaseException) -> None:
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


# --- the transaction -----------------------------------------------------------------------

@dataclass
class _Member:
    status: str
    wrapped: bytes
    kek_version: int
    key: DataKey | None = None


async def _write(batch: Sequence[Change]) -> list[tuple[ConsentView, bool] | BaseException]:
    """One transaction: each change's answer, or the domain error it alone gets."""
    outcomes: list[tuple[ConsentView, bool] | BaseException] = []
    rows: list[dict[str, object]] = []
    entries: list[audit.Entry] = []
    async with in_transaction("default") as conn:
        members, latest = await _read(conn, batch)
        for change in batch:
            member = members.get(change.member_id)
            if member is None or member.status == MemberStatus.WITHDRAWN.value:
                outcomes.append(NotFound("member not found"))
                continue
            pair = (change.member_id, change.purpose.name)
            before = latest.get(pair)
            if change.state == ConsentState.GIVEN:
                if (before is not None and before.state == ConsentState.GIVEN
                        and before.policy_version == change.version):
                    outcomes.append((before, False))
                    continue
            elif before is None:
                outcomes.append(Conflict(
                    f"there is no consent to {change.purpose.name} to withdraw"))
                continue
            elif before.state == ConsentState.WITHDRAWN:
                outcomes.append((before, False))
                continue
            if member.key is None:
                member.key = unwrap(change.rt.keys, member.wrapped, member.kek_version,
                                    change.member_id)
            view, row, entry = _event(member.key, change)
            latest[pair] = view
            rows.append(row)
            entries.append(entry)
            outcomes.append((view, True))
        if rows:
            await audit.record_rows(conn, ConsentEvent, rows, entries)
    return outcomes


def _event(key: DataKey, change: Change) -> tuple[ConsentView, dict[str, object], audit.Entry]:
    """The event row, its signed receipt and its audit entry (ids and names only)."""
    rt = change.rt
    event_id = str(ordered_uuid())
    now = rt.now()
    member_id, purpose = change.member_id, change.purpose
    receipt = receipts.issue(rt.keys, receipt_id=event_id, member_id=member_id,
                             issuer=rt.settings.issuer, controller=rt.settings.controller,
                             purpose=purpose.name, legal_basis=purpose.legal_basis,
                             policy_version=change.version, state=change.state, at=now)
    row: dict[str, object] = {
        "id": event_id, "member_id": member_id, "purpose": purpose.name, "state": change.state,
        "policy_version": change.version, "at": now,
        "client_ct": key.encrypt(f"consent/{event_id}/client", change.client[:120]),
        "user_agent_ct": key.encrypt(f"consent/{event_id}/user_agent", change.user_agent[:255]),
        "receipt": receipt}
    action = "consent.give" if change.state == ConsentState.GIVEN else "consent.withdraw"
    entry = audit.Entry(now, f"member:{member_id}", action, member_id,
                        {"purpose": purpose.name, "policyVersion": change.version,
                         "event": event_id})
    return (ConsentView(event_id, member_id, purpose.name, change.state, change.version, now,
                        receipt), row, entry)


# PostgreSQL: lock the members (in id order, so two batches never wait on each other in a
# cycle) and read their keys; then, in a statement that starts after the locks are granted
# (one statement's snapshot predates its own locks), the latest event of each pair.
_LOCK_PG = ('SELECT m."id", m."status", k."wrapped", k."kek_version" FROM "members" m '
            'JOIN "member_keys" k ON k."member_id" = m."id" WHERE m."id" = ANY($1::uuid[]) '
            'ORDER BY m."id" FOR UPDATE OF m')
_LATEST_PG = (
    'SELECT p."member_id", p."purpose", e."id", e."state", e."policy_version", e."at", '
    'e."receipt" FROM unnest($1::uuid[], $2::text[]) AS p("member_id", "purpose") '
    'JOIN LATERAL (SELECT l."id", l."state", l."policy_version", l."at", l."receipt" '
    'FROM "consent_events" l WHERE l."member_id" = p."member_id" AND l."purpose" = p."purpose" '
    'ORDER BY l."at" DESC, l."id" DESC LIMIT 1) e ON TRUE')
# SQLite writes one transaction at a time: members, keys and latest events in one statement.
_READ_SQLITE = (
    'WITH p("member_id", "purpose") AS (VALUES {pairs}) '
    'SELECT p."member_id", p."purpose", m."status", k."wrapped", k."kek_version", e."id", '
    'e."state", e."policy_version", e."at", e."receipt" FROM p '
    'JOIN "members" m ON m."id" = p."member_id" JOIN "member_keys" k ON k."member_id" = m."id" '
    'LEFT JOIN "consent_events" e ON e."id" = (SELECT l."id" FROM "consent_events" l '
    'WHERE l."member_id" = p."member_id" AND l."purpose" = p."purpose" '
    'ORDER BY l."at" DESC, l."id" DESC LIMIT 1)')


async def _read(conn: BaseDBAsyncClient, batch: Sequence[Change]
                ) -> tuple[dict[str, _Member], dict[tuple[str, str], ConsentView]]:
    """The batch's members (locked) with their wrapped keys, and the latest event of each
    (member, purpose) it names. A member missing here does not exist or has no key."""
    pairs = sorted({(c.member_id, c.purpose.name) for c in batch})
    members: dict[str, _Member] = {}
    latest: dict[tuple[str, str], ConsentView] = {}
    if conn.capabilities.dialect == "postgres":
        for r in await conn.execute_query_dict(_LOCK_PG, [sorted({m for m, _ in pairs})]):
            members[str(r["id"])] = _Member(r["status"], r["wrapped"], r["kek_version"])
        rows = await conn.execute_query_dict(
            _LATEST_PG, [[m for m, _ in pairs], [p for _, p in pairs]])
    else:
        marks = ", ".join("(?, ?)" for _ in pairs)
        rows = await conn.execute_query_dict(_READ_SQLITE.format(pairs=marks),
                                             [v for pair in pairs for v in pair])
        for r in rows:
            members[str(r["member_id"])] = _Member(r["status"], r["wrapped"], r["kek_version"])
    for r in rows:
        if r["id"] is not None:
            member_id, purpose = str(r["member_id"]), r["purpose"]
            latest[(member_id, purpose)] = ConsentView(
                str(r["id"]), member_id, purpose, ConsentState(r["state"]),
                r["policy_version"], plain_reads.as_datetime(r["at"]), r["receipt"])
    return members, latest
