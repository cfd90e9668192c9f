"""The ``announcements`` job: one notification per reachable member for each announcement.

Announcing (a policy version, a partner change) writes one ``Announcement`` row, so the
request costs the same at 10 members as at a million. This job fans it out by keyset on
member id, ``BATCH`` members per transaction: the transaction reads the cursor, advances it
by compare-and-set on ``batches`` (another worker that read the same cursor updates nothing
and writes nothing) and inserts that batch's notifications. A crash loses at most the batch
in flight, which rolls back and is done again. Only members that existed when the
announcement was made are notified (a later member reads the policy when joining).
"""

from __future__ import annotations

import uuid

from tortoise.transactions import in_transaction

from api.models.announcements import Announcement
from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.rights import Notification
from api.platform.runtime import Runtime

__all__ = ["BATCH", "fan_out", "fan_out_batch"]

BATCH = 5000


async def fan_out_batch(rt: Runtime, announcement_id: str, batch_size: int = BATCH) -> int | None:
    """Notify the next batch of members; the number written (0 when another worker took
    this batch), or None once the announcement is done."""
    async with in_transaction("default") as conn:
        row = await Announcement.filter(id=announcement_id).using_db(conn).first()
        if row is None or row.done_at is not None:
            return None
        members = Member.filter(created_at__lte=row.created_at).exclude(
            status=MemberStatus.WITHDRAWN)
        if row.cursor is not None:
            members = members.filter(id__gt=row.cursor)
        ids = await members.order_by("id").limit(batch_size).using_db(conn).values_list(
            "id", flat=True)
        now = rt.now()
        advanced = await Announcement.filter(id=row.id, batches=row.batches).using_db(conn).update(
            batches=row.batches + 1, notified=row.notified + len(ids),
            cursor=ids[-1] if ids else row.cursor,
            done_at=now if len(ids) < batch_size else None)
        if not advanced:
            return 0
        if ids:
            await Notification.bulk_create(
                [Notification(id=uuid.uuid4(), member_id=mid, kind=row.kind, subject=row.subject,
                              body=row.body, status="PENDING", attempts=0, next_attempt_at=now,
                              created_at=now) for mid in ids],
                batch_size=1000, using_db=conn)
    return len(ids)


async def fan_out(rt: Runtime, batch_size: int = BATCH) -> dict[str, int]:
    """Fan out every announcement not yet done, oldest first; returns the counts."""
    pending = await Announcement.filter(done_at__isnull=True).order_by(
        "created_at").values_list("id", flat=True)
    counts = {"announcements": 0, "notified": 0}
    for announcement_id in pending:
        while (written := await fan_out_batch(rt, str(announcement_id), batch_size)) is not None:
            counts["notified"] += written
        counts["announcements"] += 1
    return counts
