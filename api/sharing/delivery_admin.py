"""What admins see of and do to the outbox: counts, dead letters, and retrying them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from api.core.errors import BadInput
from api.models.enums import OutboxStatus
from api.models.partner import DeliveryAttempt, OutboxEvent, Partner
from api.platform import audit
from api.platform.runtime import Runtime

__all__ = ["DeadLetter", "dead_letters", "outbox_counts", "retry_dead"]


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
