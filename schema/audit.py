"""GraphQL for the audit trail (admin only; thin: calls api.platform.audit_pages)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import strawberry
from strawberry.types import Info

from api.core.errors import BadInput
from api.platform import audit_pages
from schema.pagination import PageInfo, page_size
from schema.permissions import IsAdmin

_PREFIX = "audit:"


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


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode()


def _after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        digits = text[len(_PREFIX):]
        if text.startswith(_PREFIX) and digits.isdigit() and len(digits) <= 18:
            return int(digits)
    except (UnicodeError, ValueError, binascii.Error):
        pass
    raise BadInput("after is not a cursor from this list", field="after")


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def audit_trail(self, info: Info, first: int | None = 100,
                          after: str | None = None) -> AuditConnection:
        result = await audit_pages.page(page_size(first, default=100), _after(after))
        edges = [AuditEdge(cursor=_cursor(e.seq), node=AuditEntry(
            seq=e.seq, at=e.at, actor=e.actor, action=e.action, subject=e.subject, hash=e.hash))
            for e in result.entries]
        return AuditConnection(edges=edges, page_info=PageInfo(
            has_next_page=result.has_next, end_cursor=edges[-1].cursor if edges else None))
