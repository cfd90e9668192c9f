"""The notification outbox, write side: durable messages to members.

Bodies are generic (no personal values beyond what the message needs); the recipient's
address is decrypted only at send time (``api/members/mail.py`` delivers over SMTP).
"""

from __future__ import annotations

import uuid

from tortoise.backends.base.client import BaseDBAsyncClient

from api.models.announcements import Announcement
from api.models.member import Admin
from api.models.rights import Notification
from api.platform.runtime import Runtime
from api.security.sealed import seal

__all__ = ["notify_admins", "notify", "announce_to_members", "recipient_label", "KINDS"]

KINDS = ("policy.announced", "partner.changed", "dormancy.notice", "membership.withdrawn",
         "correction.completed", "data_request.due")


def recipient_label(notification_id: str) -> str:
    """The label a notification's sealed recipient address is bound to (mail to an address
    no member row holds any more: a withdrawal confirmation, an admin's reminder)."""
    return f"notification-recipient/{notification_id}"


async def notify(rt: Runtime, conn: BaseDBAsyncClient | None, *, member_id: str | None,
                 kind: str, subject: str, body: str, recipient_ct: bytes | None = None) -> str:
    now = rt.now()
    note_id = uuid.uuid4()
    await Notification.create(id=note_id, member_id=member_id, kind=kind, subject=subject,
                              body=body, recipient_ct=recipient_ct, status="PENDING",
                              attempts=0, next_attempt_at=now, created_at=now, using_db=conn)
    return str(note_id)


async def announce_to_members(rt: Runtime, conn: BaseDBAsyncClient | None, *, kind: str,
                              subject: str, body: str) -> str:
    """Record one message for every reachable member (active, restricted or dormant) and
    return its id: one row, whatever the member count. The ``announcements`` job
    (``api/members/announcements.py``) writes the notifications in batches."""
    announcement_id = uuid.uuid4()
    await Announcement.create(id=announcement_id, kind=kind, subject=subject, body=body,
                              created_at=rt.now(), using_db=conn)
    return str(announcement_id)


async def notify_admins(rt: Runtime, conn: BaseDBAsyncClient, *, kind: str, subject: str,
                        body: str) -> int:
    """One mail per admin, in the caller's transaction. Admins have no member row, so each
    address is sealed with the notification (as a withdrawal confirmation is). Returns how many."""
    now = rt.now()
    admins = await Admin.all().using_db(conn)
    for admin in admins:
        note_id = uuid.uuid4()
        await Notification.create(
            id=note_id, member_id=None, kind=kind, subject=subject, body=body,
            recipient_ct=seal(rt.keys, recipient_label(str(note_id)), admin.email.encode()),
            status="PENDING", attempts=0, next_attempt_at=now, created_at=now, using_db=conn)
    return len(admins)
