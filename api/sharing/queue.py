"""The outbox queue, read side of ``api/sharing/outbox.py``: at least once, backoff, dead letters.

A run claims due PENDING events under a lease (``locked_until``), in one UPDATE statement
whose sub-select picks the rows: on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so concurrent
workers take disjoint events; on SQLite the UPDATE holds the one write lock while it picks.
A worker killed mid-batch leaves its claims to expire with the lease, after which any
worker delivers them again: nothing is lost, and receivers dedupe by event id. Events of a
partner suspended after a failed audit (``partner_suspensions``) are not claimed: they wait,
PENDING, spending no attempt; erasures and revocations are claimed (and handed over) first, so
a partner's backlog starts with what it must delete.

What happens to one event (grant re-check, minimizing, the adapter call) is the bridge's
(``api/sharing/bridge.py``); this module claims, schedules and records. Each try writes a
``DeliveryAttempt`` (no personal values: adapter errors are reduced to a
safe message). Success marks the event DELIVERED and records the disclosure in the same
transaction; failure schedules the next try with exponential backoff and full jitter, and
after ``MAX_ATTEMPTS`` tries the event is DEAD, visible to admins and retryable. A pull-only
partner's events are ``held``: marked DELIVERED to their channel (``partnerEvents``) without a
disclosure; the ledger records them when the partner reads them.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api.models.enums import LegalBasis, OutboxStatus
from api.models.member import MemberKey
from api.models.partner import DeliveryAttempt, OutboxEvent
from api.platform import audit
from api.platform.db import insert_rows
from api.platform.metrics import metrics_of
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, unwrap
from api.sharing import ledger
from api.sharing.bridge import ClaimedEvent, DeliveryRun, Outcome, deliver_one

__all__ = ["MAX_ATTEMPTS", "backoff", "deliver_due", "deliver_outbox"]

MAX_ATTEMPTS = 8
BACKOFF_BASE = 2.0  # seconds
BACKOFF_CAP = 3600.0
LEASE_SECONDS = 120  # a claim older than this is presumed abandoned (crashed worker)
CONCURRENCY = 32
_ACTOR = "job:deliver_outbox"
_DELETIONS = ("member.erasure", "member.revoked")  # the claim's ORDER BY names them too


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` tries: full jitter, at least 1 s."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return max(1.0, (rng or random).uniform(0, ceiling))  # noqa: S311 - jitter, not crypto


_SQLITE_CLAIM = """
UPDATE outbox_events SET locked_until = ?
WHERE id IN (SELECT id FROM outbox_events
             WHERE status = ? AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
               AND partner_id NOT IN (SELECT partner_id FROM partner_suspensions)
             ORDER BY CASE WHEN type IN ('member.erasure', 'member.revoked') THEN 0 ELSE 1 END,
                      next_attempt_at LIMIT ?)
RETURNING id"""

_POSTGRES_CLAIM = """
UPDATE outbox_events SET locked_until = $1
WHERE id IN (SELECT id FROM outbox_events
             WHERE status = $2 AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3)
               AND partner_id NOT IN (SELECT partner_id FROM partner_suspensions)
             ORDER BY CASE WHEN type IN ('member.erasure', 'member.revoked') THEN 0 ELSE 1 END,
                      next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING id"""


_EVENT_COLUMNS = ("id", "partner_id", "member_id", "type", "payload_ct", "payload_plain", "attempts",
                  "created_at")


async def _claim(rt: Runtime, n: int) -> list[ClaimedEvent]:
    """Lease up to ``n`` due events in one statement, then read them in one query.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` in the sub-select, so concurrent workers take
    disjoint rows. SQLite: the UPDATE takes the write lock before reading, so several processes
    on one file never claim the same row either."""
    now = rt.now()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        # execute_query drops an UPDATE's RETURNING rows on asyncpg; the dict form fetches them
        taken = await conn.execute_query_dict(_POSTGRES_CLAIM, [lease, OutboxStatus.PENDING.value, now, n])
    else:
        _, taken = await conn.execute_query(_SQLITE_CLAIM,
                                            [lease, OutboxStatus.PENDING.value, now, now, n])
    ids = [r["id"] for r in taken]
    if not ids:
        return []
    rows = await OutboxEvent.filter(id__in=ids).values(*_EVENT_COLUMNS)
    return sorted((ClaimedEvent(**r) for r in rows), key=_handover_order)


def _handover_order(row: ClaimedEvent) -> tuple[int, datetime, str]:
    """Erasures and revocations first (a backlog after a suspension), then oldest first."""
    return (0 if row.type in _DELETIONS else 1, row.created_at, str(row.id))


async def _load_keys(rt: Runtime, rows: Iterable[ClaimedEvent]) -> dict[str, DataKey]:
    ids = {str(r.member_id) for r in rows if r.member_id is not None and r.payload_ct}
    if not ids:
        return {}
    found = await MemberKey.filter(member_id__in=list(ids))
    return {str(k.member_id): unwrap(rt.keys, bytes(k.wrapped), k.kek_version, str(k.member_id))
            for k in found}


async def _record(rt: Runtime, outcomes: list[Outcome], max_attempts: int) -> dict[str, int]:
    """Write a batch's outcomes in one transaction: statuses, attempt log, disclosures, and
    audit entries for dead letters. A crash before this commits only means redelivery."""
    now = rt.now()
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    async with in_transaction("default") as conn:
        ok = [o for o in outcomes if o.kind == "delivered"]
        handed = [o for o in outcomes if o.kind in ("delivered", "held")]
        if handed:
            await OutboxEvent.filter(id__in=[o.row.id for o in handed]).using_db(conn).update(
                status=OutboxStatus.DELIVERED, attempts=F("attempts") + 1, delivered_at=now,
                locked_until=None, last_error=None)
        await ledger.write(conn, [
            ledger.Entry(str(o.row.member_id), str(o.partner.id), o.partner.name, o.fields,
                         (o.row.payload_plain or {}).get("purpose", ""),
                         LegalBasis((o.row.payload_plain or {}).get("legalBasis", "CONTRACT")),
                         "push", now)
            for o in ok if o.fields and o.row.member_id is not None and o.partner is not None])
        for o in outcomes:
            if o.kind in ("delivered", "held"):
                continue
            attempts = o.row.attempts + 1
            if o.kind == "dead" or attempts >= max_attempts:
                o.kind = "dead"
                await OutboxEvent.filter(id=o.row.id).using_db(conn).update(
                    status=OutboxStatus.DEAD, attempts=attempts, locked_until=None,
                    last_error=o.error)
                await audit.record(rt, _ACTOR, "outbox.dead", str(o.row.id),
                                   {"partner": str(o.row.partner_id), "attempts": attempts,
                                    "reason": o.error}, using=conn)
            else:
                await OutboxEvent.filter(id=o.row.id).using_db(conn).update(
                    attempts=attempts, locked_until=None, last_error=o.error,
                    next_attempt_at=now + timedelta(seconds=backoff(attempts)))
        await insert_rows(conn, DeliveryAttempt, [
            dict(id=uuid.uuid4(), event_id=o.row.id, at=now, ok=o.kind in ("delivered", "held"),
                 error=o.error, duration_ms=o.ms) for o in outcomes])
    m = metrics_of(rt)
    for o in outcomes:
        counts["delivered" if o.kind == "held" else o.kind] += 1
        partner = str(o.row.partner_id)  # an organisation's id: a bounded, non-personal label
        m.deliveries.labels(partner, o.kind).inc()
        if o.kind == "dead":
            m.dead_letters.labels(partner).inc()
    return counts


async def deliver_due(rt: Runtime, batch: int = 100, limit: int | None = None, *,
                      max_attempts: int = MAX_ATTEMPTS, concurrency: int = CONCURRENCY) -> dict[str, int]:
    """Deliver every due event (at most ``limit``), ``batch`` claimed at a time.

    Returns counts: ``{"claimed", "delivered", "failed", "dead"}`` (held events count as
    delivered: handed to their channel).
    """
    stats = {"claimed": 0, "delivered": 0, "failed": 0, "dead": 0}
    run = DeliveryRun(rt, {}, {}, {}, asyncio.Lock())
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(row: ClaimedEvent) -> Outcome:
        async with gate:
            return await deliver_one(run, row)

    try:
        while limit is None or stats["claimed"] < limit:
            size = batch if limit is None else min(batch, limit - stats["claimed"])
            rows = await _claim(rt, size)
            if not rows:
                break
            stats["claimed"] += len(rows)
            run.keys.update(await _load_keys(rt, rows))
            await run.load_partners(rows)
            await run.load_grants(rows)
            # Deletions are handed over before the rest of the batch, not alongside it.
            first = [r for r in rows if r.type in _DELETIONS]
            rest = [r for r in rows if r.type not in _DELETIONS]
            outcomes = [*await asyncio.gather(*(one(r) for r in first)),
                        *await asyncio.gather(*(one(r) for r in rest))]
            run.next_batch()
            for kind, n in (await _record(rt, list(outcomes), max_attempts)).items():
                stats[kind] += n
    finally:
        await run.close()
    return stats


async def deliver_outbox(rt: Runtime) -> dict[str, int]:
    """The ``deliver_outbox`` job: everything due now."""
    return await deliver_due(rt)
