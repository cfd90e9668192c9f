"""GraphQL for the audit trail (admin only)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from schema.pagination import PageInfo
from schema.permissions import IsAdmin
from schema.stub import not_yet


@strawberry.type
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    hash: str = strawberry.field(description="Hash of this entry chained over the previous entry's hash.")


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEntry


@strawberry.type
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def audit_trail(self, info: Info, first: int | None = 100,
                          after: str | None = None) -> AuditConnection:
        raise not_yet("auditTrail")
