"""``sharedMembers``: what a partner token may read now, one keyset page at a time.

- Members come in member-id order after the cursor (no OFFSET, no COUNT). Candidates are
  narrowed in SQL (ACTIVE; a purchase for CONTRACT partners; a GIVEN event for CONSENT
  partners), then :func:`api.sharing.grants.grant_for` decides each one with bulk-loaded facts.
- Only granted fields are decrypted; each member appears under its partner-specific ref.
- Cursors are AES-GCM sealed (key ``derive("cursor")``, bound to the partner id), so they do
  not reveal member ids and a cursor of one partner is useless to another.
- One disclosure row per member returned (channel ``pull``, the granted fields that hold a
  value: an empty field discloses nothing), written in one batch insert with the page.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from api.core.errors import BadInput
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, LegalBasis, MemberStatus, PersonalField
from api.models.member import Member, MemberKey
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, unwrap
from api.sharing import audits, ledger
from api.sharing import registry as partners_registry
from api.sharing.grants import Grant, PartnerState, grant_for, member_facts
from api.sharing.refs import partner_ref

__all__ = ["SharedRecord", "SharedPage", "shared_members", "candidates", "granted_values",
           "seal_cursor", "open_cursor"]

_MIN_SCAN = 20  # fewest candidates read per round while filling a page


@dataclass(frozen=True)
class SharedRecord:
    ref: str
    cursor: str
    values: dict[PersonalField, str | None]  # granted fields only

    def get(self, field: PersonalField) -> str | None:
        return self.values.get(field)

    def date_of_birth(self) -> date | None:
        raw = self.values.get(PersonalField.DATE_OF_BIRTH)
        return date.fromisoformat(raw) if raw else None


@dataclass(frozen=True)
class SharedPage:
    records: list[SharedRecord]
    has_next: bool
    end_cursor: str | None


def _cursor_aad(partner_id: str, scope: str) -> bytes:
    return f"{scope}/{partner_id}".encode()


def seal_cursor(rt: Runtime, partner_id: str, member_id: str,
                scope: str = "shared-members") -> str:
    """A cursor over ``scope`` (one list: ``shared-members``, ``partner-events``) sealed to
    the partner: useless to another partner and in another list."""
    nonce = os.urandom(12)
    blob = nonce + AESGCM(rt.keys.derive("cursor")).encrypt(
        nonce, uuid.UUID(member_id).bytes, _cursor_aad(partner_id, scope))
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


def open_cursor(rt: Runtime, partner_id: str, cursor: str, scope: str = "shared-members") -> str:
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        raw = AESGCM(rt.keys.derive("cursor")).decrypt(blob[:12], blob[12:],
                                                       _cursor_aad(partner_id, scope))
        return str(uuid.UUID(bytes=raw))
    except (binascii.Error, ValueError, InvalidTag):
        raise BadInput("after is not a cursor from this list", field="after") from None


def candidates(partner: PartnerState, after: str | None, limit: int) -> QuerySet[Member]:
    """Members that might be in the partner's scope, by id, narrowed as far as SQL can."""
    query = Member.filter(status=MemberStatus.ACTIVE)
    if partner.legal_basis == LegalBasis.CONTRACT:
        query = query.filter(has_purchase=True)
    else:
        given = ConsentEvent.filter(purpose=partner.purpose, state=ConsentState.GIVEN)
        query = query.filter(id__in=Subquery(given.values("member_id")))
    if after is not None:
        query = query.filter(id__gt=after)
    return query.order_by("id").limit(limit)


async def granted_values(rt: Runtime, members: list[Member],
                         wanted: dict[str, frozenset[PersonalField]]
                         ) -> dict[str, tuple[DataKey, dict[PersonalField, str | None]]]:
    """Decrypt only the wanted fields of each member (one key query for all)."""
    ids = [str(m.id) for m in members if wanted.get(str(m.id))]
    if not ids:
        return {}
    rows = {str(k.member_id): k for k in await MemberKey.filter(member_id__in=ids)}
    out: dict[str, tuple[DataKey, dict[PersonalField, str | None]]] = {}
    for m in members:
        mid = str(m.id)
        k = rows.get(mid)
        if k is None or not wanted.get(mid):
            continue
        key = unwrap(rt.keys, k.wrapped, k.kek_version, mid)
        out[mid] = (key, {f: key.decrypt_optional(f.column, getattr(m, f"{f.column}_ct"))
                          for f in sorted(wanted[mid])})
    return out


async def _granted_page(partner: PartnerState, after: str | None, size: int,
                        at: datetime) -> tuple[list[tuple[Member, Grant]], bool]:
    found: list[tuple[Member, Grant]] = []
    cursor = after
    while len(found) <= size:
        # SQL already narrows to (almost) exactly the granted members: read what the page
        # still needs, plus one to know whether another page follows.
        want = max(size + 1 - len(found), _MIN_SCAN)
        batch = await candidates(partner, cursor, want)
        if not batch:
            break
        facts = await member_facts(batch, [partner], at)
        for m in batch:
            grant = grant_for(partner, facts[str(m.id)])
            if grant is not None:
                found.append((m, grant))
        if len(batch) < want:
            break
        cursor = str(batch[-1].id)
    return found[:size], len(found) > size


async def shared_members(rt: Runtime, partner_id: str, first: int,
                         after: str | None) -> SharedPage:
    """A page of the members granted to ``partner_id`` now, and their disclosures recorded.
    A partner suspended after a failed audit is refused (FORBIDDEN)."""
    await audits.ensure_not_suspended(partner_id)
    after_id = open_cursor(rt, partner_id, after) if after else None
    now = rt.now()
    partner = await partners_registry.state(rt, partner_id, now)
    if not partner.in_force:
        return SharedPage([], False, None)
    page, has_next = await _granted_page(partner, after_id, first, now)
    values = await granted_values(rt, [m for m, _ in page], {str(m.id): g.fields for m, g in page})
    records: list[SharedRecord] = []
    disclosed_now: list[ledger.Entry] = []
    for m, grant in page:
        mid = str(m.id)
        if mid not in values:
            continue
        granted = values[mid][1]
        records.append(SharedRecord(partner_ref(rt.keys, partner_id, mid),
                                    seal_cursor(rt, partner_id, mid), granted))
        disclosed = sorted(f.value for f, v in granted.items() if v is not None)
        if disclosed:
            disclosed_now.append(ledger.Entry(mid, partner_id, partner.name, disclosed,
                                              grant.purpose, grant.legal_basis, "pull", now))
    await ledger.write(None, disclosed_now)
    end = records[-1].cursor if records else None
    return SharedPage(records, has_next, end)
