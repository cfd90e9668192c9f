"""Scheduled rules of Art. 4.3 and 7: retention expiry of the vault and request deadlines.

Every job is idempotent and safe from several processes: besides the job lease, each row is
claimed by a conditional UPDATE (only one process sees it change), so running a job twice, or
twice at once, gives the same result as running it once. Dormancy, which fills the vault, is
``api/members/dormancy.py``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.core.errors import NotFound
from api.members import notifications, vault
from api.models.enums import DataRequestStatus, MemberStatus
from api.models.member import Member
from api.models.rights import DataRequest
from api.platform import audit
from api.platform.runtime import Runtime
from api.rights import erasure

__all__ = ["FLAG_DAYS_BEFORE_DUE", "retention_expiry", "request_deadlines"]

log = logging.getLogger("consentry.retention")

FLAG_DAYS_BEFORE_DUE = 7


# --- retention expiry -------------------------------------------------------------------------

async def retention_expiry(rt: Runtime) -> dict[str, int]:
    """Destroy vault records past their retention (crypto-shred first, then delete the row).
    An expired DORMANT record means the member never came back: the member is destroyed."""
    destroyed = members_destroyed = 0
    for record_id, member_id, reason in await vault.expired_ids(rt):
        if reason == vault.DORMANT:
            member = await Member.get_or_none(id=member_id, status=MemberStatus.DORMANT)
            if member is not None:
                try:
                    await erasure.destroy(rt, member_id, actor="job:retention")
                    members_destroyed += 1
                except NotFound:
                    pass
        if await vault.shred(record_id):
            destroyed += 1
            await audit.record(rt, "job:retention", "vault.destroy", record_id,
                               {"reason": reason})
    return {"records": destroyed, "members": members_destroyed}


# --- data-request deadlines -------------------------------------------------------------------

async def _tell_admins(rt: Runtime, conn: BaseDBAsyncClient, request_id: str, kind: str,
                       due_at: datetime, overdue: bool) -> None:
    """One ``data_request.due`` mail per admin (address sealed like a withdrawal confirmation);
    it names the request by id only."""
    state = "is overdue" if overdue else "is due within 7 days"
    await notifications.notify_admins(
        rt, conn, kind="data_request.due",
        subject=f"A {kind.lower()} request {state}",
        body=(f"Data request {request_id} ({kind}) {state}: it must be answered by "
              f"{due_at.isoformat()}. See dataRequests in the admin API."))


async def request_deadlines(rt: Runtime) -> dict[str, int]:
    """Flag open requests due within 7 days, or overdue, to admins (audit + overdue_flagged_at)."""
    now = rt.now()
    rows = await DataRequest.filter(
        status=DataRequestStatus.OPEN, overdue_flagged_at__isnull=True,
        due_at__lte=now + timedelta(days=FLAG_DAYS_BEFORE_DUE)).values_list("id", "due_at",
                                                                           "kind")
    flagged = 0
    for request_id, due_at, kind in rows:
        async with in_transaction("default") as conn:
            if not await DataRequest.filter(id=request_id, overdue_flagged_at__isnull=True).using_db(
                    conn).update(overdue_flagged_at=now):
                continue
            action = "data_request.overdue" if due_at <= now else "data_request.due_soon"
            await audit.record(rt, "job:deadlines", action, str(request_id),
                               {"kind": str(kind), "dueAt": due_at.isoformat()}, using=conn)
            await _tell_admins(rt, conn, str(request_id), str(kind), due_at, due_at <= now)
        flagged += 1
    return {"flagged": flagged}
