"""The separate store (connection "vault") for data kept under a legal duty or while dormant.

Each record is one JSON document encrypted under its own AES-256-GCM data key, wrapped by the
KEK (``kek_version`` stored, re-wrapped by ``consentry keys rotate``). Destroying a record first
overwrites its wrapped key with NULL (crypto-shred: from then on nothing can decrypt it, even
from a backup of the row alone), then deletes the row. Reasons: ``TAX`` (purchasing member who
withdrew) and ``DORMANT`` (inactive member, restored on sign-in).
"""

from __future__ import annotations

import base64
import calendar
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections

from api.models.vault import RetainedRecord
from api.platform.runtime import Runtime
from api.security.envelope import new_data_key, rewrap, unwrap

__all__ = ["TAX", "DORMANT", "Retained", "store", "load", "find", "shred", "rewrap_all",
           "expired_ids", "add_months"]

TAX = "TAX"
DORMANT = "DORMANT"
_LABEL = "retained"


@dataclass(frozen=True)
class Retained:
    id: str
    member_id: str
    reason: str
    retained_until: datetime
    data: dict[str, Any]


def add_months(instant: datetime, months: int) -> datetime:
    """Calendar months later (or earlier): 31 Jan + 1 month is 28/29 Feb, 29 Feb + 5 years 28 Feb."""
    years, month0 = divmod(instant.month - 1 + months, 12)
    year, month = instant.year + years, month0 + 1
    return instant.replace(year=year, month=month,
                           day=min(instant.day, calendar.monthrange(year, month)[1]))


def _owner(record_id: str) -> str:
    return f"vault/{record_id}"


async def store(rt: Runtime, *, member_id: str, reason: str, data: dict[str, Any],
                retained_until: datetime) -> str:
    """Write one encrypted record; returns its id."""
    record_id = str(uuid.uuid4())
    key, wrapped, version = new_data_key(rt.keys, _owner(record_id))
    await RetainedRecord.create(
        id=record_id, member_id=member_id, reason=reason, wrapped_key=wrapped,
        kek_version=version, data_ct=key.encrypt(_LABEL, json.dumps(data, sort_keys=True)),
        retained_until=retained_until, created_at=rt.now(),
        using_db=connections.get("vault"))
    return record_id


def _wrapped_key(row: RetainedRecord) -> bytes:
    """The row's wrapped record key; every query here loads live rows only (shredding clears it)."""
    if row.wrapped_key is None:
        raise ValueError("the retained record is shredded")
    return bytes(row.wrapped_key)


def _open(rt: Runtime, row: RetainedRecord) -> Retained:
    key = unwrap(rt.keys, _wrapped_key(row), row.kek_version, _owner(str(row.id)))
    return Retained(str(row.id), str(row.member_id), row.reason, row.retained_until,
                    json.loads(key.decrypt(_LABEL, bytes(row.data_ct))))


async def load(rt: Runtime, record_id: str) -> Retained | None:
    row = await RetainedRecord.get_or_none(id=record_id, wrapped_key__isnull=False)
    return _open(rt, row) if row else None


async def find(rt: Runtime, member_id: str, reason: str) -> Retained | None:
    """The live record of a member for a reason (newest first), decrypted."""
    row = await (RetainedRecord.filter(member_id=member_id, reason=reason,
                                       wrapped_key__isnull=False)
                 .order_by("-created_at").first())
    return _open(rt, row) if row else None


async def shred(record_id: str) -> bool:
    """Crypto-shred then delete. True if this call shredded it (idempotent across processes)."""
    shredded = await RetainedRecord.filter(id=record_id, wrapped_key__isnull=False).update(
        wrapped_key=None)
    await RetainedRecord.filter(id=record_id).delete()
    return bool(shredded)


async def expired_ids(rt: Runtime, limit: int = 500) -> list[tuple[str, str, str]]:
    """(id, member_id, reason) of records whose retention period has ended."""
    rows = await (RetainedRecord.filter(retained_until__lte=rt.now())
                  .order_by("retained_until").limit(limit)
                  .values_list("id", "member_id", "reason"))
    return [(str(i), str(m), r) for i, m, r in rows]


async def rewrap_all(rt: Runtime, batch: int = 500) -> int:
    """Re-wrap every live record key under the active KEK (for ``consentry keys rotate``).

    A DORMANT record also holds the member's own wrapped data key: it is re-wrapped too, so an
    old KEK can be retired while members sleep.
    """
    active, count = rt.keys.active_kek, 0
    while True:
        rows = await (RetainedRecord.exclude(kek_version=active)
                      .filter(wrapped_key__isnull=False).limit(batch))
        if not rows:
            return count
        for row in rows:
            owner = _owner(str(row.id))
            updates: dict[str, Any] = {}
            inner = _open(rt, row).data.get("memberKey")
            if inner and int(inner["kekVersion"]) != active:
                data = _open(rt, row).data
                wrapped, version = rewrap(rt.keys, base64.b64decode(inner["wrapped"]),
                                          int(inner["kekVersion"]), str(row.member_id))
                data["memberKey"] = {"wrapped": base64.b64encode(wrapped).decode(),
                                     "kekVersion": version}
                key = unwrap(rt.keys, _wrapped_key(row), row.kek_version, owner)
                updates["data_ct"] = key.encrypt(_LABEL, json.dumps(data, sort_keys=True))
            wrapped, version = rewrap(rt.keys, _wrapped_key(row), row.kek_version, owner)
            await RetainedRecord.filter(id=row.id, kek_version=row.kek_version).update(
                wrapped_key=wrapped, kek_version=version, **updates)
            count += 1
