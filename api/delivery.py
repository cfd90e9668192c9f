"""Outbox delivery, the read side of ``api/outbox.py``: at least once, with backoff and dead letters.

A run claims due PENDING events under a lease (``locked_until``), in one UPDATE statement
whose sub-select picks the rows: on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so concurrent
workers take disjoint events; on SQLite the UPDATE holds the one write lock while it picks.
A worker killed mid-batch leaves its claims to expire with the lease, after which any
worker delivers them again: nothing is lost, and receivers dedupe by event id.

Each try writes a ``DeliveryAttempt`` (no personal values: adapter errors are reduced to a
safe message). Success marks the event DELIVERED and records the disclosure in the same
transaction; failure schedules the next try with exponential backoff and full jitter, and
after ``MAX_ATTEMPTS`` tries the event is DEAD, visible to admins and retryable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import Model, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api import audit
from api.adapters import get_adapter_class
from api.errors import BadInput
from api.jobs import job
from api.models.enums import LegalBasis, OutboxStatus, PersonalField
from api.models.member import MemberKey
from api.models.partner import DeliveryAttempt, Disclosure, OutboxEvent, Partner
from api.outbox import payload_label
from api.runtime import Runtime
from api.security.envelope import DataKey, UndecryptableError, unwrap
from api.security.sealed import open_sealed
from partners.base import DeliveryError, PartnerAdapter, PartnerEvent, SharedMember

__all__ = [
    "MAX_ATTEMPTS",
    "DeadLetter",
    "backoff",
    "dead_letters",
    "outbox_counts",
    "deliver_due",
    "register_grant_check",
    "retry_dead",
]

log = logging.getLogger("consentry.delivery")

MAX_ATTEMPTS = 8
BACKOFF_BASE = 2.0  # seconds
BACKOFF_CAP = 3600.0
LEASE_SECONDS = 120  # a claim older than this is presumed abandoned (crashed worker)
CONCURRENCY = 32
_ACTOR = "job:deliver_outbox"

# Optional hook (the grant service registers it): fields a partner may receive for a member
# at an instant, as GraphQL names, or None when the partner has no basis for the member at all.
GrantCheck = Callable[[Runtime, str, str, datetime], Awaitable[frozenset[str] | None]]
# The same answer for one partner and many members at once (a batch's worth, few queries).
GrantBatch = Callable[[Runtime, str, list[str], datetime],
                      Awaitable[dict[str, frozenset[str] | None]]]
_grant_check: list[GrantCheck] = []
_grant_batch: dict[GrantCheck, GrantBatch] = {}


def register_grant_check(fn: GrantCheck, batch: GrantBatch | None = None) -> GrantCheck:
    """Re-check grants at delivery time, so an event queued before a narrowing, a withdrawal
    or a restriction never carries a field that is no longer granted. ``batch``, when given,
    answers for a whole delivery batch per partner instead of once per member."""
    _grant_check[:] = [fn]
    if batch is not None:
        _grant_batch[fn] = batch
    return fn


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` tries: full jitter, at least 1 s."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return max(1.0, (rng or random).uniform(0, ceiling))  # noqa: S311 - jitter, not crypto


class _Dead(Exception):
    """Retrying cannot help (member destroyed, partner gone): dead-letter at once."""


class _Unavailable(Exception):
    """The partner's adapter cannot be built now (not installed, not allowed, bad config)."""


def _safe_error(exc: BaseException) -> str:
    """Attempt-log text: only messages known to be free of personal values and secrets."""
    if isinstance(exc, DeliveryError | _Dead | _Unavailable):
        text = str(exc) or type(exc).__name__
    else:
        text = f"adapter raised {type(exc).__name__}"
    return text[:255]


@dataclass
class _Run:
    """Per-run caches: partners and their adapter instances are built once per run."""

    rt: Runtime
    partners: dict[str, Partner | None]
    adapters: dict[str, PartnerAdapter | _Unavailable]
    keys: dict[str, DataKey]
    lock: asyncio.Lock
    grants: dict[tuple[str, str], asyncio.Future[frozenset[str] | None]] = field(default_factory=dict)

    async def load_grants(self, rows: Iterable[_Event]) -> None:
        """Every grant re-check a batch needs, one batch query set per partner, when the
        registered check has a batch form (else :meth:`grant` asks per member)."""
        batch = _grant_batch.get(_grant_check[0]) if _grant_check else None
        if batch is None:
            return
        wanted: dict[str, set[str]] = {}
        for r in rows:
            if r.member_id is not None and r.type != "member.erasure":
                wanted.setdefault(str(r.partner_id), set()).add(str(r.member_id))
        now = self.rt.now()
        for partner_id, member_ids in wanted.items():
            answers = await batch(self.rt, partner_id, sorted(member_ids), now)
            for member_id in member_ids:
                done = asyncio.get_running_loop().create_future()
                done.set_result(answers.get(member_id))
                self.grants[(partner_id, member_id)] = done

    async def grant(self, partner_id: str, member_id: str) -> frozenset[str] | None:
        """The grant re-check, once per partner and member within a batch."""
        key = (partner_id, member_id)
        if key not in self.grants:
            self.grants[key] = asyncio.ensure_future(
                _grant_check[0](self.rt, partner_id, member_id, self.rt.now()))
        return await self.grants[key]

    async def load_partners(self, rows: Iterable[_Event]) -> None:
        """A batch's partner rows in one query, before its deliveries start (otherwise every
        concurrent delivery misses the cache at once and reads the same row)."""
        wanted = {str(r.partner_id) for r in rows} - set(self.partners)
        if wanted:
            found = {str(p.id): p for p in await Partner.filter(id__in=list(wanted))}
            self.partners.update({pid: found.get(pid) for pid in wanted})

    async def partner(self, partner_id: str) -> Partner | None:
        if partner_id not in self.partners:
            self.partners[partner_id] = await Partner.get_or_none(id=partner_id)
        return self.partners[partner_id]

    async def adapter(self, partner: Partner) -> PartnerAdapter:
        pid = str(partner.id)
        async with self.lock:
            if pid not in self.adapters:
                self.adapters[pid] = self._build(partner)
        built = self.adapters[pid]
        if isinstance(built, _Unavailable):
            raise _Unavailable(str(built))
        return built

    def _build(self, partner: Partner) -> PartnerAdapter | _Unavailable:
        try:
            cls = get_adapter_class(self.rt, partner.adapter)
        except BadInput as exc:
            return _Unavailable(exc.message)
        try:
            config = (json.loads(open_sealed(self.rt.keys, f"partner-config/{partner.id}",
                                             partner.config_ct)) if partner.config_ct else {})
        except (UndecryptableError, ValueError):
            return _Unavailable("partner adapter config does not decrypt")
        try:
            return cls(config)
        except Exception:  # the message might echo a secret value: keep only the class
            return _Unavailable(f"adapter {partner.adapter!r} rejected its config")

    async def close(self) -> None:
        for adapter in self.adapters.values():
            if isinstance(adapter, PartnerAdapter):
                try:
                    await adapter.aclose()
                except Exception:
                    log.exception("closing adapter %s failed", type(adapter).__name__)


_SQLITE_CLAIM = """
UPDATE outbox_events SET locked_until = ?
WHERE id IN (SELECT id FROM outbox_events
             WHERE status = ? AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
             ORDER BY next_attempt_at LIMIT ?)
RETURNING id"""

_POSTGRES_CLAIM = """
UPDATE outbox_events SET locked_until = $1
WHERE id IN (SELECT id FROM outbox_events
             WHERE status = $2 AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3)
             ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING id"""


@dataclass(slots=True)
class _Event:
    """The columns a delivery reads of a claimed event (no model instances: cheaper)."""

    id: uuid.UUID
    partner_id: uuid.UUID
    member_id: uuid.UUID | None
    type: str
    payload_ct: bytes | None
    payload_plain: dict[str, Any] | None
    attempts: int
    created_at: datetime


_EVENT_COLUMNS = ("id", "partner_id", "member_id", "type", "payload_ct", "payload_plain", "attempts",
                  "created_at")


async def _claim(rt: Runtime, n: int) -> list[_Event]:
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
    return [_Event(**r) for r in rows]


async def _load_keys(rt: Runtime, rows: Iterable[_Event]) -> dict[str, DataKey]:
    ids = {str(r.member_id) for r in rows if r.member_id is not None and r.payload_ct}
    if not ids:
        return {}
    found = await MemberKey.filter(member_id__in=list(ids))
    return {str(k.member_id): unwrap(rt.keys, bytes(k.wrapped), k.kek_version, str(k.member_id))
            for k in found}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _event_for(run: _Run, row: _Event, partner: Partner,
                     adapter: PartnerAdapter) -> tuple[PartnerEvent, list[str]]:
    """The minimized event and the PersonalField values it actually discloses."""
    plain = row.payload_plain or {}
    member: dict[str, Any] = {"ref": plain.get("ref")}
    if row.payload_ct:
        key = run.keys.get(str(row.member_id))
        if key is None:
            raise _Dead("member destroyed")
        member = json.loads(key.decrypt(payload_label(str(row.id)), bytes(row.payload_ct)))
    allowed = set(type(adapter).accepts)
    if _grant_check and row.member_id is not None and row.type != "member.erasure":
        granted = await run.grant(str(partner.id), str(row.member_id))
        if granted is None:
            raise _Dead("no basis to share this member any more")
        allowed &= granted
    personal = {k: v for k, v in member.items() if k != "ref"}
    sent = {k: v for k, v in personal.items() if k in allowed}
    if personal and not sent:
        raise _Dead("no field of this event is granted any more")
    fields = [f for f in plain.get("fields", []) if PersonalField(f).graphql in sent]
    event = PartnerEvent(id=str(row.id), type=row.type, partner=partner.name,
                         at=_iso(row.created_at), member=SharedMember.of({"ref": member["ref"], **sent}))
    return event, fields


@dataclass
class _Outcome:
    row: _Event
    kind: str  # delivered | failed | dead
    ms: int
    error: str | None = None
    partner: Partner | None = None
    fields: list[str] | None = None


async def _deliver_one(run: _Run, row: _Event) -> _Outcome:
    """Try one event; never raises. The outcome is written later, with the whole batch."""
    started = time.perf_counter()

    def done(kind: str, **kw: Any) -> _Outcome:
        return _Outcome(row, kind, int((time.perf_counter() - started) * 1000), **kw)

    try:
        partner = await run.partner(str(row.partner_id))
        if partner is None:
            raise _Dead("partner not found")
        if partner.retired_at is not None and row.type != "member.erasure":
            raise _Dead("partner retired")
        adapter = await run.adapter(partner)
        event, fields = await _event_for(run, row, partner, adapter)
        await adapter.deliver(event)
    except _Dead as exc:
        return done("dead", error=_safe_error(exc))
    except Exception as exc:  # any adapter failure is retried; never crash the run
        if not isinstance(exc, DeliveryError | _Unavailable):
            log.warning("delivery of %s failed: %s", row.id, type(exc).__name__)
        return done("failed", error=_safe_error(exc))
    return done("delivered", partner=partner, fields=fields)


async def _insert_many(conn: BaseDBAsyncClient, model: type[Model],
                       rows: list[dict[str, Any]]) -> None:
    """``bulk_create`` without building model instances (their validating ``__init__`` was a
    tenth of a delivery's CPU): tortoise's own INSERT statement and per-field ``to_db_value``
    conversions, so rows are stored exactly as ``bulk_create`` stores them. Every column must
    be given."""
    if not rows:
        return
    executor = conn.executor_class(model=model, db=conn)
    fields_map = model._meta.fields_map
    columns = [(name, fields_map[name].to_db_value) for name in executor.regular_columns_all]
    await conn.execute_many(executor.insert_query_all,
                            [[to_db(row[name], model) for name, to_db in columns] for row in rows])


async def _record(rt: Runtime, outcomes: list[_Outcome], max_attempts: int) -> dict[str, int]:
    """Write a batch's outcomes in one transaction: statuses, attempt log, disclosures, and
    audit entries for dead letters. A crash before this commits only means redelivery."""
    now = rt.now()
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    async with in_transaction("default") as conn:
        ok = [o for o in outcomes if o.kind == "delivered"]
        if ok:
            await OutboxEvent.filter(id__in=[o.row.id for o in ok]).using_db(conn).update(
                status=OutboxStatus.DELIVERED, attempts=F("attempts") + 1, delivered_at=now,
                locked_until=None, last_error=None)
        # The ledger rows exactly as api.disclosures.record writes them, in one statement.
        ledger = [dict(id=uuid.uuid4(), member_id=o.row.member_id, partner_id=o.partner.id,
                       partner_name=o.partner.name, fields_=sorted(o.fields),
                       purpose=(o.row.payload_plain or {}).get("purpose", ""),
                       legal_basis=LegalBasis((o.row.payload_plain or {}).get("legalBasis",
                                                                              "CONTRACT")),
                       channel="push", at=now)
                  for o in ok if o.fields and o.row.member_id is not None and o.partner is not None]
        await _insert_many(conn, Disclosure, ledger)
        for o in outcomes:
            if o.kind == "delivered":
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
        await _insert_many(conn, DeliveryAttempt, [
            dict(id=uuid.uuid4(), event_id=o.row.id, at=now, ok=o.kind == "delivered",
                 error=o.error, duration_ms=o.ms) for o in outcomes])
    for o in outcomes:
        counts[o.kind] += 1
    return counts


async def deliver_due(rt: Runtime, batch: int = 100, limit: int | None = None, *,
                      max_attempts: int = MAX_ATTEMPTS, concurrency: int = CONCURRENCY) -> dict[str, int]:
    """Deliver every due event (at most ``limit``), ``batch`` claimed at a time.

    Returns counts: ``{"claimed", "delivered", "failed", "dead"}``.
    """
    stats = {"claimed": 0, "delivered": 0, "failed": 0, "dead": 0}
    run = _Run(rt, {}, {}, {}, asyncio.Lock())
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(row: _Event) -> _Outcome:
        async with gate:
            return await _deliver_one(run, row)

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
            outcomes = await asyncio.gather(*(one(r) for r in rows))
            run.grants.clear()  # grants and partner rows are re-read for every batch
            run.partners.clear()
            for kind, n in (await _record(rt, list(outcomes), max_attempts)).items():
                stats[kind] += n
    finally:
        await run.close()
    return stats


@job("deliver_outbox", exclusive=False)
async def deliver_outbox_job(rt: Runtime) -> dict[str, int]:
    return await deliver_due(rt)


# --- admin visibility -------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetter:
    id: str
    partner_id: str
    partner_name: str | None
    type: str
    attempts: int
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None


async def dead_letters(rt: Runtime, *, partner_id: str | None = None,
                       limit: int = 100) -> list[DeadLetter]:
    """Dead events, oldest first (ids, partner, error text: no personal values)."""
    if not 1 <= limit <= 1000:
        raise BadInput("limit must be between 1 and 1000", field="first")
    query = OutboxEvent.filter(status=OutboxStatus.DEAD)
    if partner_id is not None:
        query = query.filter(partner_id=_uuid(partner_id, "partnerId"))
    rows = await query.order_by("created_at").limit(limit)
    names = {str(p.id): p.name for p in
             await Partner.filter(id__in=list({r.partner_id for r in rows}))}
    last: dict[str, datetime] = {}
    for a in await DeliveryAttempt.filter(event_id__in=[r.id for r in rows]).order_by("at"):
        last[str(a.event_id)] = a.at
    return [DeadLetter(str(r.id), str(r.partner_id), names.get(str(r.partner_id)), r.type,
                       r.attempts, r.last_error, r.created_at, last.get(str(r.id))) for r in rows]


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise BadInput(f"{field} is not a valid id", field=field) from exc


async def retry_dead(rt: Runtime, actor: str, ids: list[str]) -> int:
    """Put dead events back in the queue, due now, with a fresh try budget. Returns how many."""
    if not ids:
        raise BadInput("give at least one event id", field="ids")
    if len(ids) > 1000:
        raise BadInput("at most 1000 events at once", field="ids")
    wanted = [_uuid(i, "ids") for i in ids]
    now = rt.now()
    async with in_transaction("default") as conn:
        dead = await OutboxEvent.filter(id__in=wanted, status=OutboxStatus.DEAD).using_db(conn)
        if not dead:
            return 0
        await OutboxEvent.filter(id__in=[r.id for r in dead], status=OutboxStatus.DEAD).using_db(
            conn).update(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now,
                         locked_until=None)
        for row in dead:
            await audit.record(rt, actor, "outbox.retry", str(row.id),
                               {"partner": str(row.partner_id)}, using=conn)
    return len(dead)



async def outbox_counts(rt: Runtime) -> dict[str, int]:
    """How many partner events are pending, delivered and dead (admin overview)."""
    return {status.value.lower(): await OutboxEvent.filter(status=status).count()
            for status in OutboxStatus}
