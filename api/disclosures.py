"""The disclosure ledger: who received which of a member's fields, when, and on what basis."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from api.models.enums import LegalBasis
from api.models.partner import Disclosure

__all__ = ["record", "for_member", "DisclosureView", "partners_that_received"]


@dataclass(frozen=True)
class DisclosureView:
    partner: str
    partner_id: str
    fields: list[str]
    purpose: str
    legal_basis: LegalBasis
    channel: str
    at: datetime


async def record(conn: BaseDBAsyncClient | None, *, member_id: str, partner_id: str,
                 partner_name: str, fields: list[str], purpose: str, legal_basis: str,
                 channel: str, at: datetime) -> None:
    await Disclosure.create(id=uuid.uuid4(), member_id=member_id, partner_id=partner_id,
                            partner_name=partner_name, fields_=sorted(fields), purpose=purpose,
                            legal_basis=LegalBasis(legal_basis), channel=channel, at=at,
                            using_db=conn)


async def for_member(member_id: str) -> list[DisclosureView]:
    rows = await Disclosure.filter(member_id=member_id).order_by("at")
    return [DisclosureView(r.partner_name, str(r.partner_id), list(r.fields_), r.purpose,
                           r.legal_basis, r.channel, r.at) for r in rows]


async def partners_that_received(member_id: str, field: str | None = None) -> list[str]:
    """Partner ids that were ever sent this member's data (optionally: this field)."""
    rows = await Disclosure.filter(member_id=member_id).values("partner_id", "fields_")
    return sorted({str(r["partner_id"]) for r in rows
                   if field is None or field in (r["fields_"] or [])})
