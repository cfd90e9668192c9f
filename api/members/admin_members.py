"""Admin reads of members: keyset-paginated lists and audited single reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.core.errors import NotFound
from api.members import records as members
from api.members.records import MemberView
from api.models.enums import MemberStatus
from api.models.member import Member
from api.platform import audit
from api.platform.runtime import Runtime

__all__ = ["page", "read", "Page"]


@dataclass(frozen=True)
class Page:
    views: list[MemberView]
    has_next: bool


async def page(rt: Runtime, size: int, after_id: str | None,
               status: MemberStatus | None) -> Page:
    """Members ordered by id, after a cursor id: an index range scan, no OFFSET, no COUNT."""
    query = Member.all()
    if status is not None:
        query = query.filter(status=status)
    else:
        query = query.exclude(status=MemberStatus.WITHDRAWN)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = await query.order_by("id").limit(size + 1)
    readable = {v.id: v for v in await members.views_for(rt, rows[:size])}
    # A dormant member's data sits in the vault: listed with status and dates only.
    views = [readable.get(str(m.id)) or members.sealed_view(m) for m in rows[:size]
             if str(m.id) in readable or m.status == MemberStatus.DORMANT]
    return Page(views, len(rows) > size)


async def read(rt: Runtime, admin_id: str, member_id: str) -> MemberView | None:
    """One member for an admin; the read itself is written to the audit trail."""
    await audit.record(rt, f"admin:{admin_id}", "admin.read_member", member_id)
    try:
        uuid.UUID(member_id)
        return await members.get_view(rt, member_id)
    except ValueError:
        return None
    except NotFound:
        dormant = await Member.get_or_none(id=member_id, status=MemberStatus.DORMANT)
        return members.sealed_view(dormant) if dormant else None
