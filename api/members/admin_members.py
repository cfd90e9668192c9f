"""Admin reads of members: keyset-paginated lists and single reads, each one audited.

Every read that shows an admin personal data leaves one audit entry naming the members read, by
id only (no personal values in the trail): ``read`` and ``find`` per member, ``admin_page`` per
page. ``page`` itself is not audited: it serves ``admin_page`` (and the bench's reference).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.core.errors import BadInput, NotFound
from api.members import records as members
from api.members import user_ids
from api.members.records import MemberView
from api.models.enums import MemberStatus
from api.models.member import Member
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index

__all__ = ["page", "admin_page", "read", "find", "Page"]


@dataclass(frozen=True)
class Page:
    views: list[MemberView]
    has_next: bool


async def page(rt: Runtime, size: int, after_id: str | None,
               status: MemberStatus | None) -> Page:
    """Members ordered by id, after a cursor id: an index range scan, no OFFSET, no COUNT.

    Not audited: what answers an admin goes through ``admin_page``.
    """
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


async def admin_page(rt: Runtime, admin_id: str, size: int, after_id: str | None,
                     status: MemberStatus | None) -> Page:
    """A page for an admin, written to the audit trail (the ids read) before it is returned."""
    result = await page(rt, size, after_id, status)
    await audit.record(rt, f"admin:{admin_id}", "admin.list_members", None,
                       {"members": [v.id for v in result.views]})
    return result


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


async def find(rt: Runtime, admin_id: str, *, user_id: str | None = None,
               email: str | None = None) -> MemberView | None:
    """One member by exact user id or email (through the blind indexes, so the value is never
    searched in plaintext); a hit is an audited ``read``, a miss is audited too, without the value."""
    if (user_id is None) == (email is None):
        raise BadInput("give either userId or email", field="userId")
    if user_id is not None:  # the same lookup as sign-in (ids are one account whatever the case)
        row = await user_ids.find(rt, user_id)
    else:
        row = await Member.filter(email_idx=blind_index(rt.keys, "email", email or "")).first()
    if row is None or row.status == MemberStatus.WITHDRAWN:
        await audit.record(rt, f"admin:{admin_id}", "admin.lookup_member", None)
        return None
    return await read(rt, admin_id, str(row.id))
