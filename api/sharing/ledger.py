"""The disclosure ledger: who received which of a member's fields, when, and on what basis.

The one writer for every channel: pull pages, pushed deliveries and the test helpers all record
through :func:`write`, so a disclosure row looks the same whichever way the data left.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from api.models.enums import LegalBasis
from api.models.partner import Disclosure
from api.platform.db import insert_rows

__all__ = ["PARTNER_CHANNELS", "Entry", "write", "for_member", "DisclosureView", "partners_that_received"]


@dataclass(frozen=True)
class Entry:
    """One disclosure to record: ``fields`` are PersonalField values (never the values)."""

    member_id: str
    partner_id: str
    partner_name: str
    fields: list[str]
    purpose: str
    legal_basis: LegalBasis
    channel: str  # pull | push
    at: datetime


@dataclass(frozen=True)
class DisclosureView:
    partner: str
    partner_id: str
    fields: list[str]
    purpose: str
    legal_basis: LegalBasis
    channel: str
    at: datetime


async def write(conn: BaseDBAsyncClient | None, entries: list[Entry]) -> None:
    """Record disclosures in one statement, inside the caller's transaction when given."""
    if not entries:
        return
    await insert_rows(conn or connections.get("default"), Disclosure, [
        dict(id=uuid.uuid4(), member_id=e.member_id, partner_id=e.partner_id,
             partner_name=e.partner_name, fields_=sorted(e.fields), purpose=e.purpose,
             legal_basis=e.legal_basis, channel=e.channel, at=e.at) for e in entries])


async def for_member(member_id: str) -> list[DisclosureView]:
    rows = await Disclosure.filter(member_id=member_id).order_by("at")
    return [DisclosureView(r.partner_name, str(r.partner_id), list(r.fields_), r.purpose,
                           r.legal_basis, r.channel, r.at) for r in rows]


PARTNER_CHANNELS = ("pull", "push")  # a legal-process disclosure ("legal") went to no partner


async def partners_that_received(member_id: str, field: str | None = None) -> list[str]:
    """Partner ids that were ever sent this member's data (optionally: this field)."""
    rows = await Disclosure.filter(member_id=member_id, channel__in=PARTNER_CHANNELS).values(
        "partner_id", "fields_")
    return sorted({str(r["partner_id"]) for r in rows
                   if field is None or field in (r["fields_"] or [])})
