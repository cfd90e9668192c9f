"""Legal-process disclosure (policy 5.1): one admin asks, a different admin decides, released once.

- ``request``: the member, the authority, the order's reference, the basis (``LEGAL_OBLIGATION``
  or ``VITAL_INTEREST`` only), the minimum fields, a justification and whether the order lets
  the member be told. A destroyed member is NOT_FOUND.
- ``decide``: by an admin other than the requester (the requester is FORBIDDEN): four eyes.
- ``release``: the approved fields, once (a second release is CONFLICT). A dormant member's data
  comes from the vault record dormancy wrote; the member is not woken.

Whether the member sees it: the ledger row (``api.sharing.ledger.write``, channel ``legal``)
and the member's mail are written only when ``notifyMember`` is true. When the order forbids
telling the member, this table is the only record of the disclosure (with its release time),
the choice is an audit entry of its own, and the ``legal_disclosure_reviews`` job reminds the
admins every 90 days to review whether the order still forbids it. So ``me.disclosures`` and the
member's export, which read the ledger, cannot show it by mistake.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Conflict, Forbidden, NotFound
from api.members import notifications, vault
from api.members import records as members
from api.models.article5 import LegalDisclosure, LegalDisclosureStatus
from api.models.enums import LegalBasis, MemberStatus, PersonalField
from api.models.member import Admin, Member
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, unwrap
from api.sharing import ledger

__all__ = ["LegalDisclosureView", "BASES", "CHANNEL", "PURPOSE", "REVIEW_DAYS", "request",
           "decide", "release", "listed", "reviews"]

BASES = (LegalBasis.LEGAL_OBLIGATION, LegalBasis.VITAL_INTEREST)
CHANNEL = "legal"  # the ledger channel of a legal-process disclosure
PURPOSE = "legal_process"
REVIEW_DAYS = 90
_LIMITS = {"authority": 120, "reference": 200, "justification": 4000, "note": 4000}


@dataclass(frozen=True)
class LegalDisclosureView:
    id: str
    member_id: str
    authority: str
    reference: str
    legal_basis: LegalBasis
    fields: list[PersonalField]
    justification: str
    notify_member: bool
    status: LegalDisclosureStatus
    requested_by: str
    decided_by: str | None
    requested_at: datetime
    decided_at: datetime | None


def _view(row: LegalDisclosure) -> LegalDisclosureView:
    order = list(PersonalField)
    return LegalDisclosureView(
        id=str(row.id), member_id=str(row.member_id), authority=row.authority,
        reference=row.reference, legal_basis=LegalBasis(row.legal_basis),
        fields=sorted((PersonalField(f) for f in row.fields_), key=order.index),
        justification=row.justification, notify_member=row.notify_member,
        status=LegalDisclosureStatus(row.status), requested_by=row.requested_by_name,
        decided_by=row.decided_by_name, requested_at=row.requested_at,
        decided_at=row.decided_at)


def _text(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise BadInput(f"{name} is required", field=name)
    if len(value) > _LIMITS[name]:
        raise BadInput(f"{name} is longer than {_LIMITS[name]} characters", field=name)
    return value


async def _admin_name(admin_id: str) -> str:
    admin = await Admin.get_or_none(id=admin_id)
    if admin is None:  # a token outliving its admin: nobody to hold to account
        raise Forbidden("unknown admin")
    return admin.user_id


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("legal disclosure not found") from None


async def _row(disclosure_id: str) -> LegalDisclosure:
    row = await LegalDisclosure.get_or_none(id=_parse_id(disclosure_id))
    if row is None:
        raise NotFound("legal disclosure not found")
    return row


async def request(rt: Runtime, admin_id: str, *, member_id: str, authority: str, reference: str,
                  legal_basis: LegalBasis | str, fields: list[PersonalField],
                  justification: str, notify_member: bool) -> LegalDisclosureView:
    """Open a request; nothing is disclosed until a second admin approves and someone releases."""
    try:
        basis = LegalBasis(legal_basis)
    except ValueError:
        basis = None
    if basis not in BASES:
        raise BadInput("a legal-process disclosure rests on LEGAL_OBLIGATION or VITAL_INTEREST",
                       field="legalBasis")
    if not fields:
        raise BadInput("name the minimum fields the order needs", field="fields")
    if len(set(fields)) != len(fields):
        raise BadInput("a field is listed twice", field="fields")
    authority, reference = _text("authority", authority), _text("reference", reference)
    justification = _text("justification", justification)
    try:
        member_uuid = uuid.UUID(str(member_id))
    except ValueError:
        raise NotFound("member not found") from None
    member = await Member.get_or_none(id=member_uuid)
    if member is None or member.status == MemberStatus.WITHDRAWN:
        raise NotFound("member not found")  # destroyed: there is nothing left to disclose
    name = await _admin_name(admin_id)
    now = rt.now()
    row_id = uuid.uuid4()
    async with in_transaction("default") as conn:
        row = await LegalDisclosure.create(
            id=row_id, member_id=member_uuid, authority=authority, reference=reference,
            legal_basis=basis, fields_=[PersonalField(f).value for f in fields],
            justification=justification, notify_member=notify_member,
            status=LegalDisclosureStatus.REQUESTED, requested_by=admin_id,
            requested_by_name=name, requested_at=now,
            review_due_at=None if notify_member else now + timedelta(days=REVIEW_DAYS),
            using_db=conn)
        await audit.record(rt, f"admin:{admin_id}", "legal_disclosure.request", str(row_id), {
            "member": str(member_uuid), "legalBasis": basis.value,
            "fields": list(row.fields_), "notifyMember": notify_member}, using=conn)
        if not notify_member:
            await audit.record(rt, f"admin:{admin_id}", "legal_disclosure.member_not_told",
                               str(row_id), {"member": str(member_uuid),
                                             "reviewDueAt": (now + timedelta(
                                                 days=REVIEW_DAYS)).isoformat()}, using=conn)
    return _view(row)


async def decide(rt: Runtime, admin_id: str, disclosure_id: str, approve: bool,
                 note: str | None = None) -> LegalDisclosureView:
    """Approve or reject; never by the admin who asked."""
    row = await _row(disclosure_id)
    if row.requested_by == admin_id:
        raise Forbidden("a different admin must decide this request (four eyes)")
    if row.status != LegalDisclosureStatus.REQUESTED:
        raise Conflict(f"the request is already {row.status.value}")
    clean_note = _text("note", note) if note and note.strip() else None
    name = await _admin_name(admin_id)
    status = LegalDisclosureStatus.APPROVED if approve else LegalDisclosureStatus.REJECTED
    now = rt.now()
    async with in_transaction("default") as conn:
        claimed = await LegalDisclosure.filter(
            id=row.id, status=LegalDisclosureStatus.REQUESTED).using_db(conn).update(
            status=status, decided_by=admin_id, decided_by_name=name, decided_at=now,
            decision_note=clean_note,
            **({"review_due_at": None} if not approve else {}))
        if not claimed:
            raise Conflict("the request was decided meanwhile")
        await audit.record(rt, f"admin:{admin_id}", f"legal_disclosure.{status.value.lower()}",
                           str(row.id), {"member": str(row.member_id)}, using=conn)
    return _view(await _row(disclosure_id))


def _dormant_key(rt: Runtime, member_id: str, record: vault.Retained) -> DataKey:
    inner = record.data["memberKey"]
    return unwrap(rt.keys, base64.b64decode(inner["wrapped"]), int(inner["kekVersion"]),
                  member_id)


async def _values(rt: Runtime, member: Member,
                  fields: list[PersonalField]) -> dict[str, str | None]:
    """The approved fields as text (dates ISO), from the main store or, for a dormant member,
    from the vault record (read, not restored: the member stays dormant)."""
    member_id = str(member.id)
    if member.status != MemberStatus.DORMANT:
        view = await members.get_view(rt, member_id)
        return {f.graphql: view.value(f) for f in fields}
    record = await vault.find(rt, member_id, vault.DORMANT)
    if record is None:
        raise NotFound("member not found")
    key = _dormant_key(rt, member_id, record)
    columns: dict[str, Any] = record.data["columns"]
    out: dict[str, str | None] = {}
    for f in fields:
        blob = columns.get(f"{f.column}_ct")
        value = key.decrypt_optional(f.column, base64.b64decode(blob) if blob else None)
        out[f.graphql] = date.fromisoformat(value).isoformat() if (
            value and f == PersonalField.DATE_OF_BIRTH) else value
    return out


def _member_mail(row: LegalDisclosure) -> tuple[str, str]:
    names = ", ".join(PersonalField(f).value.replace("_", " ").lower() for f in row.fields_)
    why = ("a legal obligation" if row.legal_basis == LegalBasis.LEGAL_OBLIGATION
           else "to protect someone's vital interests")
    return ("Your data was disclosed under a legal process",
            f"We disclosed your {names} to {row.authority} ({why}, order {row.reference}). "
            "You can see it among your disclosures.")


async def release(rt: Runtime, admin_id: str, disclosure_id: str) -> dict[str, str | None]:
    """The approved fields of an approved request, once; recorded and audited."""
    row = await _row(disclosure_id)
    if row.status == LegalDisclosureStatus.RELEASED:
        raise Conflict("already released: the data is handed out once")
    if row.status != LegalDisclosureStatus.APPROVED:
        raise Conflict(f"the request is {row.status.value}, not APPROVED")
    member = await Member.get_or_none(id=row.member_id)
    if member is None or member.status == MemberStatus.WITHDRAWN:
        raise NotFound("member not found")
    fields = [PersonalField(f) for f in row.fields_]
    values = await _values(rt, member, fields)
    now = rt.now()
    async with in_transaction("default") as conn:
        if not await LegalDisclosure.filter(
                id=row.id, status=LegalDisclosureStatus.APPROVED).using_db(conn).update(
                status=LegalDisclosureStatus.RELEASED, released_at=now):
            raise Conflict("already released: the data is handed out once")
        if row.notify_member:
            await ledger.write(conn, [ledger.Entry(
                member_id=str(row.member_id), partner_id=str(row.id),
                partner_name=row.authority, fields=list(row.fields_), purpose=PURPOSE,
                legal_basis=LegalBasis(row.legal_basis), channel=CHANNEL, at=now)])
            subject, body = _member_mail(row)
            await notifications.notify(rt, conn, member_id=str(row.member_id),
                                       kind="legal_disclosure.released", subject=subject,
                                       body=body)
        await audit.record(rt, f"admin:{admin_id}", "legal_disclosure.release", str(row.id), {
            "member": str(row.member_id), "fields": list(row.fields_),
            "legalBasis": row.legal_basis.value, "memberTold": row.notify_member}, using=conn)
    return values


async def listed(status: LegalDisclosureStatus | None = None) -> list[LegalDisclosureView]:
    query = LegalDisclosure.all() if status is None else LegalDisclosure.filter(status=status)
    return [_view(r) for r in await query.order_by("requested_at", "id")]


async def reviews(rt: Runtime) -> dict[str, int]:
    """The ``legal_disclosure_reviews`` job: every 90 days while a member is not told, each admin
    gets a mail to review whether the order still forbids telling them (audited)."""
    now = rt.now()
    due = await LegalDisclosure.filter(
        notify_member=False, review_due_at__lte=now,
        status__in=[LegalDisclosureStatus.REQUESTED, LegalDisclosureStatus.APPROVED,
                    LegalDisclosureStatus.RELEASED]).values_list("id", "review_due_at")
    reminded = 0
    for row_id, due_at in due:
        next_due = due_at + timedelta(days=REVIEW_DAYS)
        while next_due <= now:  # the job did not run for a while: one reminder, not a burst
            next_due += timedelta(days=REVIEW_DAYS)
        async with in_transaction("default") as conn:
            if not await LegalDisclosure.filter(id=row_id, review_due_at=due_at).using_db(
                    conn).update(review_due_at=next_due):
                continue  # another process reminded
            await notifications.notify_admins(
                rt, conn, kind="legal_disclosure.review",
                subject="Review: a member is not told of a legal disclosure",
                body=(f"Legal disclosure {row_id} is withheld from the member. Review "
                      "whether the order still forbids telling them (legalDisclosures in "
                      "the admin API)."))
            await audit.record(rt, "job:legal_reviews", "legal_disclosure.review_due",
                               str(row_id), {"nextReviewAt": next_due.isoformat()}, using=conn)
        reminded += 1
    return {"reminded": reminded}

