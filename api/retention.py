"""Scheduled rules of Art. 4.3 and 7: dormancy, retention expiry, request deadlines.

Every job is idempotent and safe from several processes: besides the job lease, each row is
claimed by a conditional UPDATE (only one process sees it change), so running a job twice, or
twice at once, gives the same result as running it once.

Dormancy: a member inactive for 11 months (``last_active_at``) gets a notice; at 12 months, and
no sooner than 30 days after that notice, the member becomes DORMANT and the personal data moves
to the vault: the field ciphertexts and the wrapped data key go into one vault record (itself
encrypted under its own key) and are removed from the main store, which keeps only the blind
indexes and password hash needed to sign in. Signing in (``auth.reactivation_hooks``) restores
them and shreds the vault record. A dormant member's record is retained for
``settings.dormant_retention_days``; then the member is destroyed like a withdrawal.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api import audit, auth, erasure, notifications, vault
from api.errors import NotFound
from api.jobs import job
from api.models.enums import DataRequestStatus, MemberStatus
from api.models.member import Admin, Member, MemberKey
from api.models.rights import DataRequest, Notification
from api.runtime import Runtime
from api.security.envelope import rewrap
from api.security.sealed import seal

__all__ = ["NOTICE_MONTHS", "DORMANT_MONTHS", "NOTICE_LEAD_DAYS", "FLAG_DAYS_BEFORE_DUE",
           "make_dormant", "reactivate", "dormancy", "retention_expiry", "request_deadlines"]

log = logging.getLogger("consentry.retention")

NOTICE_MONTHS = 11
DORMANT_MONTHS = 12
NOTICE_LEAD_DAYS = 30
FLAG_DAYS_BEFORE_DUE = 7
_COLUMNS = ("user_id_ct", "email_ct", "full_name_ct", "date_of_birth_ct", "phone_ct", "address_ct")
_BLANK = {"user_id_ct": b"", "email_ct": b"", "full_name_ct": b"", "date_of_birth_ct": None,
          "phone_ct": None, "address_ct": None}


def _b64(blob: bytes | None) -> str | None:
    return None if blob is None else base64.b64encode(bytes(blob)).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


# --- dormancy ---------------------------------------------------------------------------------

async def _send_notices(rt: Runtime) -> int:
    now = rt.now()
    cutoff = vault.add_months(now, -NOTICE_MONTHS)
    rows = await Member.filter(status=MemberStatus.ACTIVE, last_active_at__lte=cutoff).values_list(
        "id", "last_active_at", "dormancy_notified_at")
    sent = 0
    for member_id, last_active, notified in rows:
        if notified is not None and notified >= last_active:
            continue  # already told since the last activity
        async with in_transaction("default") as conn:
            query = Member.filter(id=member_id, status=MemberStatus.ACTIVE,
                                  last_active_at=last_active)
            query = (query.filter(dormancy_notified_at__isnull=True) if notified is None
                     else query.filter(dormancy_notified_at=notified))
            if not await query.using_db(conn).update(dormancy_notified_at=now):
                continue  # another process claimed it, or the member came back
            await notifications.notify(
                rt, conn, member_id=str(member_id), kind="dormancy.notice",
                subject="Your account will become dormant",
                body=("You have not used your account for 11 months. If you do not sign in "
                      "within 30 days, it becomes dormant and your personal data is moved to "
                      "separate storage. Signing in again restores it."))
            await audit.record(rt, "job:dormancy", "member.dormancy_notice", str(member_id),
                               using=conn)
        sent += 1
    return sent


async def make_dormant(rt: Runtime, member_id: str) -> bool:
    """Move one ACTIVE member's personal data to the vault. False if someone else did."""
    member = await Member.get_or_none(id=member_id, status=MemberStatus.ACTIVE)
    key_row = await MemberKey.get_or_none(member_id=member_id)
    if member is None or key_row is None:
        return False
    wrapped, version = rewrap(rt.keys, bytes(key_row.wrapped), key_row.kek_version, member_id)
    now = rt.now()
    data = {"format": "consentry.dormant/v1", "memberKey": {"wrapped": _b64(wrapped),
                                                            "kekVersion": version},
            "columns": {c: _b64(getattr(member, c)) for c in _COLUMNS}}
    record_id = await vault.store(rt, member_id=member_id, reason=vault.DORMANT, data=data,
                                  retained_until=now + timedelta(
                                      days=rt.settings.dormant_retention_days))
    moved = False
    try:
        async with in_transaction("default") as conn:
            moved = bool(await Member.filter(
                id=member_id, status=MemberStatus.ACTIVE,
                last_active_at=member.last_active_at).using_db(conn).update(
                status=MemberStatus.DORMANT, dormant_since=now, **_BLANK))
            if moved:
                await MemberKey.filter(member_id=member_id).using_db(conn).delete()
                await audit.record(rt, "job:dormancy", "member.dormant", member_id,
                                   {"vaultRecord": record_id}, using=conn)
    finally:
        if not moved:
            await vault.shred(record_id)
    return moved


async def _make_dormant_all(rt: Runtime) -> int:
    now = rt.now()
    rows = await Member.filter(
        status=MemberStatus.ACTIVE, last_active_at__lte=vault.add_months(now, -DORMANT_MONTHS),
        dormancy_notified_at__lte=now - timedelta(days=NOTICE_LEAD_DAYS),
    ).values_list("id", "last_active_at", "dormancy_notified_at")
    count = 0
    for member_id, last_active, notified in rows:
        if notified < last_active:
            continue  # the notice predates the latest activity: a new notice comes first
        if await make_dormant(rt, str(member_id)):
            count += 1
    if count:
        await erasure.flush_sqlite()
    return count


async def reactivate(rt: Runtime, member_id: str, *, notify: bool = True) -> bool:
    """Restore a DORMANT member's data from the vault (sign-in, or before destruction)."""
    record = await vault.find(rt, member_id, vault.DORMANT)
    if record is None:
        return False
    data: dict[str, Any] = record.data
    wrapped = _unb64(data["memberKey"]["wrapped"])
    version = int(data["memberKey"]["kekVersion"])
    if version != rt.keys.active_kek:
        wrapped, version = rewrap(rt.keys, wrapped, version, member_id)
    columns = {c: _unb64(v) for c, v in data["columns"].items()}
    async with in_transaction("default") as conn:
        restored = await Member.filter(id=member_id, status=MemberStatus.DORMANT).using_db(
            conn).update(status=MemberStatus.ACTIVE, dormant_since=None,
                         dormancy_notified_at=None, **columns)
        if not restored:
            return False
        await MemberKey.create(member_id=member_id, wrapped=wrapped, kek_version=version,
                               using_db=conn)
        await audit.record(rt, f"member:{member_id}" if notify else "system",
                           "member.reactivate", member_id, {"vaultRecord": record.id},
                           using=conn)
    await vault.shred(record.id)
    return True


async def _on_sign_in(rt: Runtime, member_id: str) -> None:
    await reactivate(rt, member_id)


auth.reactivation_hooks.append(_on_sign_in)


@job("dormancy")
async def dormancy(rt: Runtime) -> dict[str, int]:
    return {"notified": await _send_notices(rt), "dormant": await _make_dormant_all(rt)}


# --- retention expiry -------------------------------------------------------------------------

@job("retention_expiry")
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
    for admin in await Admin.all().using_db(conn):
        note_id = uuid.uuid4()
        await Notification.create(
            id=note_id, member_id=None, kind="data_request.due",
            subject=f"A {kind.lower()} request {state}",
            body=(f"Data request {request_id} ({kind}) {state}: it must be answered by "
                  f"{due_at.isoformat()}. See dataRequests in the admin API."),
            recipient_ct=seal(rt.keys, erasure.recipient_label(str(note_id)),
                              admin.email.encode()),
            status="PENDING", attempts=0, next_attempt_at=rt.now(), created_at=rt.now(),
            using_db=conn)


@job("request_deadlines")
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
