"""Dormancy (Art. 4.3): inactive members' personal data sealed away, and restored on sign-in.

A member inactive for 11 months (``last_active_at``) gets a notice; at 12 months, and no sooner
than 30 days after that notice, the member becomes DORMANT and the personal data moves to the
vault: the field ciphertexts and the wrapped data key go into one vault record (itself encrypted
under its own key) and are removed from the main store, which keeps only the blind indexes and
password hash needed to sign in. Signing in calls :func:`reactivate` (``api/members/auth.py``),
which restores them and shreds the vault record. A dormant member's record is retained for
``settings.dormant_retention_days``; then the retention job destroys the member like a
withdrawal (``api/rights/retention.py``).

Every step is idempotent and safe from several processes: each row is claimed by a conditional
UPDATE, so running the job twice, or twice at once, gives the same result as running it once.
"""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from api.members import notifications, vault
from api.members.records import MemberView, view_of
from api.models.enums import MemberStatus
from api.models.member import Member, MemberKey
from api.platform import audit
from api.platform.db import flush_sqlite
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, rewrap, unwrap

__all__ = ["NOTICE_MONTHS", "DORMANT_MONTHS", "NOTICE_LEAD_DAYS", "make_dormant", "reactivate",
           "open_sealed", "dormancy"]

NOTICE_MONTHS = 11
DORMANT_MONTHS = 12
NOTICE_LEAD_DAYS = 30
_COLUMNS = ("user_id_ct", "email_ct", "full_name_ct", "date_of_birth_ct", "phone_ct", "address_ct")
_BLANK = {"user_id_ct": b"", "email_ct": b"", "full_name_ct": b"", "date_of_birth_ct": None,
          "phone_ct": None, "address_ct": None}


def _b64(blob: bytes | None) -> str | None:
    return None if blob is None else base64.b64encode(bytes(blob)).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


async def _send_notices(rt: Runtime) -> int:
    now = rt.now()
    cutoff = vault.add_months(now, -NOTICE_MONTHS)
    # Only members not told since their last activity: the ones waiting out their notice
    # stay in the database, not in this process, however many there are.
    rows = await Member.filter(
        Q(dormancy_notified_at__isnull=True) | Q(dormancy_notified_at__lt=F("last_active_at")),
        status=MemberStatus.ACTIVE, last_active_at__lte=cutoff,
    ).values_list("id", "last_active_at", "dormancy_notified_at")
    sent = 0
    for member_id, last_active, notified in rows:
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
        # A notice older than the latest activity does not count: a new notice comes first.
        dormancy_notified_at__gte=F("last_active_at"),
    ).values_list("id", flat=True)
    count = 0
    for member_id in rows:
        if await make_dormant(rt, str(member_id)):
            count += 1
    if count:
        await flush_sqlite()
    return count


async def open_sealed(rt: Runtime, member: Member) -> tuple[MemberView, DataKey, str] | None:
    """A DORMANT member's personal data and data key, read from the vault record (and its id)
    without restoring them. Destruction reads them here: restoring first would make the member
    ACTIVE, unnotified and long inactive for a moment, and a dormancy run in another process
    would mail it a fresh notice on its way out. None if the vault copy is gone."""
    record = await vault.find(rt, str(member.id), vault.DORMANT)
    if record is None:
        return None
    data: dict[str, Any] = record.data
    key = unwrap(rt.keys, base64.b64decode(data["memberKey"]["wrapped"]),
                 int(data["memberKey"]["kekVersion"]), str(member.id))
    sealed = copy.copy(member)  # in memory only: the stored row stays as it is
    for column, value in data["columns"].items():
        setattr(sealed, column, _unb64(value))
    return view_of(sealed, key), key, record.id


async def reactivate(rt: Runtime, member_id: str) -> bool:
    """Restore a DORMANT member's data from the vault: the member signed in."""
    record = await vault.find(rt, member_id, vault.DORMANT)
    if record is None:
        return False
    data: dict[str, Any] = record.data
    wrapped = base64.b64decode(data["memberKey"]["wrapped"])
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
        await audit.record(rt, f"member:{member_id}", "member.reactivate", member_id,
                           {"vaultRecord": record.id}, using=conn)
    await vault.shred(record.id)
    return True


async def dormancy(rt: Runtime) -> dict[str, int]:
    """The ``dormancy`` job: notices at 11 months, then DORMANT at 12."""
    return {"notified": await _send_notices(rt), "dormant": await _make_dormant_all(rt)}
