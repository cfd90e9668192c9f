"""Purchases: the record that makes a member "purchasing" (CONTRACT partners serve them; tax
law keeps their records after withdrawal).

The reference may identify the member (an order number, an invoice line), so it is stored
encrypted under the member's data key. The first purchase of an ACTIVE member brings them into
every CONTRACT partner's scope: the ``member.shared`` events are written in the purchase's
own transaction, so a purchase is never recorded without them (nor the reverse).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from tortoise.transactions import in_transaction

from api.core.errors import BadInput, NotFound
from api.core.validation import clean_text
from api.members import records as members
from api.models.enums import LegalBasis, MemberStatus, PersonalField
from api.models.member import Member
from api.models.partner import Purchase
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.envelope import DataKey
from api.sharing import push as sharing
from api.sharing.grants import MemberFacts, member_facts

__all__ = ["PurchaseView", "record_purchase", "for_member", "REFERENCE_LABEL", "decrypt_reference"]

REFERENCE_LABEL = "purchase_reference"  # the AES-GCM field label of ``reference_ct``

_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,4})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_REFERENCE_MAX = 120


@dataclass(frozen=True)
class PurchaseView:
    id: str
    member_id: str
    amount: str
    currency: str
    reference: str
    at: datetime


def _amount(value: str) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not _AMOUNT.match(text):
        raise BadInput("amount must be a decimal number such as 12.50", field="amount")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BadInput("amount must be a decimal number such as 12.50", field="amount") from None
    if number <= 0:
        raise BadInput("amount must be greater than zero", field="amount")
    return text


def _currency(value: str) -> str:
    text = (value or "").strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.match(text):
        raise BadInput("currency must be a three-letter ISO 4217 code such as EUR",
                       field="currency")
    return text


async def _member(member_id: str) -> Member:
    try:
        mid = uuid.UUID(str(member_id))
    except ValueError:
        raise NotFound("member not found") from None
    member = await Member.get_or_none(id=mid)
    if member is None or member.status == MemberStatus.WITHDRAWN:
        raise NotFound("member not found")
    return member


async def record_purchase(rt: Runtime, actor: str, member_id: str, *, amount: str,
                          currency: str, reference: str) -> PurchaseView:
    amount = _amount(amount)
    currency = _currency(currency)
    reference = clean_text(reference, field="reference", max_len=_REFERENCE_MAX)
    member = await _member(member_id)
    mid = str(member.id)
    key = await members.data_key(rt, mid)
    now = rt.now()
    purchase_id = uuid.uuid4()
    first = not member.has_purchase
    # Scope changes only for a first purchase of an active member: compute it before writing.
    partners, after, values = [], None, {}
    if first and member.status == MemberStatus.ACTIVE:
        partners = [p for p in await sharing.in_force_partners(rt)
                    if p.legal_basis == LegalBasis.CONTRACT]
        if partners:
            facts = (await member_facts([member], partners, now))[mid]
            after = MemberFacts(mid, facts.status, True, facts.consents)
            view = await members.get_view(rt, mid)
            values = {f: view.value(f) for f in PersonalField}
    async with in_transaction("default") as conn:
        await Purchase.create(id=purchase_id, member_id=mid, amount=amount, currency=currency,
                              reference_ct=key.encrypt(REFERENCE_LABEL, reference), at=now,
                              using_db=conn)
        # Conditional: of two concurrent first purchases only one brings the member into scope.
        became = first and bool(await Member.filter(id=mid, has_purchase=False).using_db(
            conn).update(has_purchase=True))
        pushed = 0
        if became and after is not None:
            before = MemberFacts(mid, after.status, False, after.consents)
            pushed = await sharing.push_gains(rt, conn, member_id=mid, key=key, values=values,
                                              partners=partners, before=before, after=after)
        await audit.record(rt, actor, "purchase.record", mid,
                           {"purchase": str(purchase_id), "events": pushed}, using=conn)
    return PurchaseView(str(purchase_id), mid, amount, currency, reference, now)


async def for_member(rt: Runtime, member_id: str) -> list[PurchaseView]:
    """A member's purchases, oldest first, references decrypted (exports)."""
    rows = await Purchase.filter(member_id=member_id).order_by("at")
    if not rows:
        return []
    key = await members.data_key(rt, member_id)
    return [PurchaseView(str(r.id), str(r.member_id), r.amount, r.currency,
                         decrypt_reference(key, r), r.at) for r in rows]


def decrypt_reference(key: DataKey, row: Purchase) -> str:
    """A purchase's reference (exports, the tax record kept on withdrawal)."""
    return key.decrypt(REFERENCE_LABEL, bytes(row.reference_ct))
