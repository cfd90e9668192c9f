"""Admin-only GraphQL for outbox delivery (extra fields, not in the contract): dead letters,
retrying them, and queue counts. Resolvers stay thin: the rules live in api/sharing/delivery_admin.py."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.core.errors import BadInput
from api.sharing import delivery_admin
from schema.pagination import MAX_PAGE, page_size
from schema.permissions import IsAdmin, principal_of


@strawberry.type(description="A partner event that exhausted its tries (no personal values).")
class DeadLetter:
    id: strawberry.ID
    partner_id: strawberry.ID
    partner_name: str | None
    type: str
    attempts: int
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None


@strawberry.type
class OutboxCounts:
    pending: int
    delivered: int
    dead: int


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token: dead-lettered partner events, oldest first.")
    async def dead_letters(self, info: Info, partner_id: strawberry.ID | None = None,
                           first: int = 100) -> list[DeadLetter]:
        rows = await delivery_admin.dead_letters(info.context.rt, partner_id=partner_id,
                                           limit=page_size(first, default=100))
        return [DeadLetter(id=strawberry.ID(r.id), partner_id=strawberry.ID(r.partner_id),
                           partner_name=r.partner_name, type=r.type, attempts=r.attempts,
                           last_error=r.last_error, created_at=r.created_at,
                           last_attempt_at=r.last_attempt_at) for r in rows]

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token: partner outbox size by status.")
    async def outbox_counts(self, info: Info) -> OutboxCounts:
        counts = await delivery_admin.outbox_counts(info.context.rt)
        return OutboxCounts(**counts)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin token: queue dead events again, due now; returns how many.")
    async def retry_dead_letters(self, info: Info, ids: list[strawberry.ID]) -> int:
        principal = principal_of(info)
        if len(ids) > MAX_PAGE:
            raise BadInput(f"retry at most {MAX_PAGE} events at a time", field="ids")
        return await delivery_admin.retry_dead(info.context.rt, f"admin:{principal.subject}",
                                         [str(i) for i in ids])
