"""Outbox delivery, the read side of ``api/outbox.py``: at least once, with backoff and dead letters.

A run claims due PENDING events under a lease (``locked_until``). On PostgreSQL the claim is
``SELECT ... FOR UPDATE SKIP LOCKED`` in a transaction that sets the lease, so concurrent
workers take disjoint events; on SQLite (one writer at a time) a conditional UPDATE per row
does the same. A worker killed mid-batch leaves its claims to expire with the lease, after
which any worker delivers them again: nothing is lost, and receivers dedupe by event id.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api import audit, disclosures
from api.adapters import get_adapter_class
from api.errors import BadInput
from api.jobs import job
from api.models.enums import OutboxStatus, PersonalField
from api.models.member import MemberKey
from api.models.partner import DeliveryAttempt, OutboxEvent, Partner
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
_grant_check: list[GrantCheck] = []


def register_grant_check(fn: GrantCheck) -> GrantCheck:
    """Re-check grants at delivery time, so an event queued before a narrowing, a withdrawal
    or a restriction never carries a field that is no longer granted."""
    _grant_check[:] = [fn]
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
            raise built
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


async def _claim(rt: Runtime, n: int) -> list[OutboxEvent]:
    now = rt.now()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    due = (OutboxEvent.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
           .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now)))
    async with in_transaction("default") as conn:
        if conn.capabilities.dialect == "postgres":
            rows = await (due.order_by("next_attempt_at").limit(n)
                          .select_for_update(skip_locked=True).using_db(conn))
            if rows:
                await OutboxEvent.filter(id__in=[r.id for r in rows]).using_db(conn).update(
                    locked_until=lease)
            return rows
        candidates = await due.order_by("next_attempt_at").limit(n).using_db(conn)
        claimed = []
        for row in candidates:  # another process may have claimed it since the SELECT
            taken = await (OutboxEvent.filter(id=row.id, status=OutboxStatus.PENDING)
                           .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
                           .using_db(conn).update(locked_until=lease))
            if taken:
                claimed.append(row)
        return claimed


async def _load_keys(rt: Runtime, rows: Iterable[OutboxEvent]) -> dict[str, DataKey]:
    ids = {str(r.member_id) for r in rows if r.member_id is not None and r.payload_ct}
    if not ids:
        return {}
    found = await MemberKey.filter(member_id__in=list(ids))
    return {str(k.member_id): unwrap(rt.keys, bytes(k.wrapped), k.kek_version, str(k.member_id))
            for k in found}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _event_for(run: _Run, row: OutboxEvent, partner: Partner,
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
        granted = await _grant_check[0](run.rt, str(partner.id), str(row.member_id), run.rt.now())
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


async def _attempt(conn: BaseDBAsyncClient, row: OutboxEvent, at: datetime, ok: bool,
                   error: str | None, started: float) -> None:
    await DeliveryAttempt.create(id=uuid.uuid4(), event_id=row.id, at=at, ok=ok, error=error,
                                 duration_ms=int((time.perf_counter() - started) * 1000),
                                 using_db=conn)


async def _delivered(rt: Runtime, row: OutboxEvent, partner: Partner, fields: list[str],
                     started: float) -> None:
    now = rt.now()
    plain = row.payload_plain or {}
    async with in_transaction("default") as conn:
        await OutboxEvent.filter(id=row.id).using_db(conn).update(
            status=OutboxStatus.DELIVERED, attempts=row.attempts + 1, delivered_at=now,
            locked_until=None, last_error=None)
        await _attempt(conn, row, now, True, None, started)
        if fields and row.member_id is not None:
            await disclosures.record(conn, member_id=str(row.member_id), partner_id=str(partner.id),
                                     partner_name=partner.name, fields=fields,
                                     purpose=plain.get("purpose", ""),
                                     legal_basis=plain.get("legalBasis", "CONTRACT"),
                                     channel="push", at=now)


async def _failed(rt: Runtime, row: OutboxEvent, error: str, started: float, *, dead: bool,
                  max_attempts: int) -> str:
    now = rt.now()
    attempts = row.attempts + 1
    dead = dead or attempts >= max_attempts
    async with in_transaction("default") as conn:
        await _attempt(conn, row, now, False, error, started)
        if dead:
            await OutboxEvent.filter(id=row.id).using_db(conn).update(
                status=OutboxStatus.DEAD, attempts=attempts, locked_until=None, last_error=error)
            await audit.record(rt, _ACTOR, "outbox.dead", str(row.id),
                               {"partner": str(row.partner_id), "attempts": attempts,
                                "reason": error}, using=conn)
        else:
            await OutboxEvent.filter(id=row.id).using_db(conn).update(
                attempts=attempts, locked_until=None, last_error=error,
                next_attempt_at=now + timedelta(seconds=backoff(attempts)))
    return "dead" if dead else "failed"


async def _deliver_one(run: _Run, row: OutboxEvent, max_attempts: int) -> str:
    started = time.perf_counter()
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
        return await _failed(run.rt, row, _safe_error(exc), started, dead=True,
                             max_attempts=max_attempts)
    except Exception as exc:  # any adapter failure is retried; never crash the run
        if not isinstance(exc, DeliveryError | _Unavailable):
            log.warning("delivery of %s failed: %s", row.id, type(exc).__name__)
        return await _failed(run.rt, row, _safe_error(exc), started, dead=False,
                             max_attempts=max_attempts)
    await _delivered(run.rt, row, partner, fields, started)
    return "delivered"


async def deliver_due(rt: Runtime, batch: int = 100, limit: int | None = None, *,
                      max_attempts: int = MAX_ATTEMPTS, concurrency: int = CONCURRENCY) -> dict[str, int]:
    """Deliver every due event (at most ``limit``), ``batch`` claimed at a time.

    Returns counts: ``{"claimed", "delivered", "failed", "dead"}``.
    """
    stats = {"claimed": 0, "delivered": 0, "failed": 0, "dead": 0}
    run = _Run(rt, {}, {}, {}, asyncio.Lock())
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(row: OutboxEvent) -> str:
        async with gate:
            return await _deliver_one(run, row, max_attempts)

    try:
        while limit is None or stats["claimed"] < limit:
            size = batch if limit is None else min(batch, limit - stats["claimed"])
            rows = await _claim(rt, size)
            if not rows:
                break
            stats["claimed"] += len(rows)
            run.keys.update(await _load_keys(rt, rows))
            for outcome in await asyncio.gather(*(one(r) for r in rows)):
                stats[outcome] += 1
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
