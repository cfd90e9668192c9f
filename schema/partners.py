"""GraphQL for outsourcing partners, purchases, pull access and the disclosure ledger."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.core.errors import Forbidden, Unauthenticated
from api.models import enums as e
from api.models.partner import PartnerChange as ChangeRow
from api.models.partner_audits import PartnerAuditOutcome
from api.rights import processing_record
from api.sharing import audits, duties, oauth, objections, pull, purchases, push
from api.sharing import ledger as disclosures
from api.sharing import registry as partners_registry
from api.sharing.grants import PartnerState
from schema.enums import LegalBasis, PartnerChangeKind, PartnerKind, PartnerStatus, PersonalField
from schema.pagination import PageInfo, page_size
from schema.permissions import IsAdmin, IsAdminOrPartner, IsMember, IsPartner, principal_of


class AdminField(IsAdmin):
    """An admin-only field on a type public callers reach too: FORBIDDEN to everyone else, the
    anonymous included (contract v2), rather than the UNAUTHENTICATED of a protected root field."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        try:
            return super().has_permission(source, info, **kwargs)
        except Unauthenticated:
            raise Forbidden("this field needs an admin token") from None


def _sorted(fields: Iterable[str]) -> list[PersonalField]:
    order = list(e.PersonalField)
    return sorted((e.PersonalField(f) for f in fields), key=order.index)


async def _upcoming(info: Info, partner_id: str,
                    pending: list[ChangeRow] | None) -> list[PartnerChange]:
    if pending is None:
        pending = (await partners_registry.upcoming(info.context.rt, [partner_id]))[partner_id]
    return [PartnerChange.of(c) for c in pending]


strawberry.enum(PartnerAuditOutcome, name="PartnerAuditOutcome")  # the model's enum, as in schema.enums


@strawberry.type
class PartnerAudit:
    id: strawberry.ID
    at: datetime
    outcome: PartnerAuditOutcome
    notes: str | None
    next_due_at: datetime
    auditor: str

    @classmethod
    def of(cls, v: audits.AuditView) -> PartnerAudit:
        return cls(id=strawberry.ID(v.id), at=v.at, outcome=v.outcome, notes=v.notes,
                   next_due_at=v.next_due_at, auditor=v.auditor)


@strawberry.type
class UpcomingDisclosure:
    partner_id: strawberry.ID
    partner: str
    fields: list[PersonalField] = strawberry.field(description="What this member's data would give the partner once the change is in force.")
    legal_basis: LegalBasis
    effective_at: datetime
    objected: bool = strawberry.field(description="The member objected: nothing of theirs goes to this partner on a consent basis.")

    @classmethod
    def of(cls, u: objections.Upcoming) -> UpcomingDisclosure:
        return cls(partner_id=strawberry.ID(u.partner_id), partner=u.partner,
                   fields=_sorted(f.value for f in u.fields), legal_basis=u.legal_basis,
                   effective_at=u.effective_at, objected=u.objected)


async def member_upcoming(info: Info, member_id: str) -> list[UpcomingDisclosure]:
    """``Member.upcomingDisclosures``."""
    return [UpcomingDisclosure.of(u)
            for u in await objections.upcoming_for(info.context.rt, member_id)]


@strawberry.type
class Partner:
    """The admin view of a partner. It is also reachable from public types
    (``PublicPartner.upcoming.partner``), so each admin-only field guards itself (contract v2)."""

    id: strawberry.ID
    name: str
    kind: PartnerKind
    purpose: str
    adapter: str = strawberry.field(permission_classes=[AdminField])
    status: PartnerStatus
    fields: list[PersonalField]
    optional_fields: list[PersonalField]
    pending: strawberry.Private[list[ChangeRow] | None] = None

    @strawberry.field
    async def upcoming(self, info: Info) -> list[PartnerChange]:
        return await _upcoming(info, str(self.id), self.pending)

    @strawberry.field(permission_classes=[AdminField])
    async def audits(self, info: Info) -> list[PartnerAudit]:
        return [PartnerAudit.of(v) for v in (await audits.audits_for([str(self.id)]))[str(self.id)]]

    @strawberry.field(permission_classes=[AdminField])
    async def next_audit_due_at(self, info: Info) -> datetime | None:
        return (await audits.next_due([str(self.id)]))[str(self.id)]

    @strawberry.field(permission_classes=[AdminField],
                      description="True while the last audit FAILED: nothing is shared with the partner.")
    async def suspended(self, info: Info) -> bool:
        return await audits.is_suspended(str(self.id))

    @strawberry.field(permission_classes=[AdminField],
                      description="How many members objected to this partner (objectToPartner).")
    async def objections(self, info: Info) -> int:
        return await objections.objection_count(str(self.id))

    @classmethod
    def of(cls, s: PartnerState, pending: list[ChangeRow] | None = None) -> Partner:
        return cls(id=strawberry.ID(s.id), name=s.name, kind=s.kind, purpose=s.purpose,
                   adapter=s.adapter, status=s.status, fields=_sorted(s.fields),
                   optional_fields=_sorted(s.optional_fields), pending=pending)


@strawberry.type
class PartnerChange:
    id: strawberry.ID
    kind: PartnerChangeKind
    announced_at: datetime
    effective_at: datetime
    fields: list[PersonalField]
    optional_fields: list[PersonalField]
    partner_id: strawberry.Private[str]
    state: strawberry.Private[PartnerState | None] = None

    @strawberry.field
    async def partner(self, info: Info) -> Partner:
        state = self.state or await partners_registry.state(info.context.rt, self.partner_id)
        return Partner.of(state)

    @classmethod
    def of(cls, row: ChangeRow, state: PartnerState | None = None) -> PartnerChange:
        return cls(id=strawberry.ID(str(row.id)), kind=e.PartnerChangeKind(row.kind),
                   announced_at=row.announced_at, effective_at=row.effective_at,
                   fields=_sorted(row.fields_), optional_fields=_sorted(row.optional_fields),
                   partner_id=str(row.partner_id), state=state)


@strawberry.type
class PublicPartner:
    id: strawberry.ID
    name: str
    kind: PartnerKind
    purpose: str
    status: PartnerStatus
    fields: list[PersonalField]
    optional_fields: list[PersonalField]
    pending: strawberry.Private[list[ChangeRow] | None] = None

    @strawberry.field(description="Changes announced and not yet in force.")
    async def upcoming(self, info: Info) -> list[PartnerChange]:
        return await _upcoming(info, str(self.id), self.pending)

    @classmethod
    def of(cls, s: PartnerState, pending: list[ChangeRow] | None = None) -> PublicPartner:
        return cls(id=strawberry.ID(s.id), name=s.name, kind=s.kind, purpose=s.purpose,
                   status=s.status, fields=_sorted(s.fields),
                   optional_fields=_sorted(s.optional_fields), pending=pending)


@strawberry.type
class PartnerCredentials:
    client_id: str
    client_secret: str = strawberry.field(description="Shown once; only a hash is stored.")
    scopes: list[str]


@strawberry.type
class Purchase:
    id: strawberry.ID
    amount: str
    currency: str
    reference: str
    at: datetime


@strawberry.type
class Disclosure:
    partner: str
    fields: list[PersonalField]
    purpose: str
    legal_basis: LegalBasis
    at: datetime
    deletion_due_at: datetime | None = strawberry.field(
        default=None, description="Set for disclosures whose data the partner must delete (erasure, revocation).")
    deletion_confirmed_at: datetime | None = strawberry.field(
        default=None, description="When the partner confirmed the deletion.")


@strawberry.type
class SharedMember:
    ref: strawberry.ID = strawberry.field(description="A pseudonym for the member that is stable for this partner and differs between partners.")
    user_id: str | None = None
    email: str | None = None
    full_name: str | None = None
    date_of_birth: date | None = None
    phone: str | None = None
    address: str | None = None


@strawberry.type
class SharedMemberEdge:
    cursor: str
    node: SharedMember


@strawberry.type
class SharedMemberConnection:
    edges: list[SharedMemberEdge]
    page_info: PageInfo


@strawberry.input
class PartnerInput:
    name: str
    kind: PartnerKind
    purpose: str
    adapter: str = strawberry.field(description="Name of an installed partner adapter plugin.")
    config: JSON | None = strawberry.field(default=None, description="Adapter settings; secrets in it are stored encrypted and never read back.")
    fields: list[PersonalField] = strawberry.field(description="Minimum fields the outsourced service needs (legal basis: contract).")
    optional_fields: list[PersonalField] = strawberry.field(description="Fields shared only for members who consented to this partner's purpose.")
    effective_at: datetime | None = strawberry.field(default=None, description="When the partner takes effect: 30 days after the announcement (the default) or later; an earlier date is refused.")


async def member_disclosures(info: Info, member_id: str) -> list[Disclosure]:
    """The ledger for ``Member.disclosures``, each row with its deletion duty, if any
    (the matching rule: ``api.sharing.duties.match``)."""
    owed = await duties.for_member(member_id)
    out = []
    for d in await disclosures.for_member(member_id):
        duty = duties.match(d, owed)
        out.append(Disclosure(partner=d.partner, fields=_sorted(d.fields), purpose=d.purpose,
                              legal_basis=d.legal_basis, at=d.at,
                              deletion_due_at=duty.due_at if duty else None,
                              deletion_confirmed_at=duty.confirmed_at if duty else None))
    return out


def _actor(info: Info) -> str:
    p = principal_of(info)
    return f"{p.role.lower()}:{p.subject}"


async def _listed(info: Info) -> list[tuple[PartnerState, list[ChangeRow]]]:
    rt = info.context.rt
    states = await partners_registry.states(rt)
    pending = await partners_registry.upcoming(rt, [s.id for s in states])
    return [(s, pending[s.id]) for s in states]


def _shared(record: pull.SharedRecord) -> SharedMember:
    f = e.PersonalField
    return SharedMember(ref=strawberry.ID(record.ref), user_id=record.get(f.USER_ID),
                        email=record.get(f.EMAIL), full_name=record.get(f.FULL_NAME),
                        date_of_birth=record.date_of_birth(), phone=record.get(f.PHONE),
                        address=record.get(f.ADDRESS))


@strawberry.type
class Query:
    @strawberry.field(description="The outsourcing partners, with announced (not yet effective) changes. Public.")
    async def outsourcing_partners(self, info: Info) -> list[PublicPartner]:
        return [PublicPartner.of(s, pending) for s, pending in await _listed(info)]

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def partners(self, info: Info) -> list[Partner]:
        return [Partner.of(s, pending) for s, pending in await _listed(info)]

    @strawberry.field(permission_classes=[IsPartner], description="Partner token: only the members and fields this partner may see now.")
    async def shared_members(self, info: Info, first: int | None = 100,
                             after: str | None = None) -> SharedMemberConnection:
        rt = info.context.rt
        partner_id = await oauth.active_partner(rt, principal_of(info), "members:read")
        page = await pull.shared_members(rt, partner_id, page_size(first, 100), after)
        edges = [SharedMemberEdge(cursor=r.cursor, node=_shared(r)) for r in page.records]
        return SharedMemberConnection(edges=edges, page_info=PageInfo(
            has_next_page=page.has_next, end_cursor=page.end_cursor))


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def announce_partner(self, info: Info, input: PartnerInput) -> PartnerChange:
        result = await partners_registry.announce(
            info.context.rt, _actor(info), name=input.name, kind=input.kind,
            purpose=input.purpose, adapter=input.adapter, config=input.config,
            fields=input.fields, optional_fields=input.optional_fields,
            effective_at=input.effective_at)
        await processing_record.note_changes(info.context.rt, _actor(info))
        return PartnerChange.of(result.change, result.partner)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def change_partner_fields(self, info: Info, partner_id: strawberry.ID,
                                    fields: list[PersonalField],
                                    optional_fields: list[PersonalField],
                                    effective_at: datetime | None = None) -> PartnerChange:
        """A widening takes effect ``effectiveAt`` (30 days on at the soonest, the default);
        a narrowing at once."""
        result = await partners_registry.change_fields(info.context.rt, _actor(info),
                                                       str(partner_id), fields, optional_fields,
                                                       effective_at)
        if result.change.kind == e.PartnerChangeKind.FIELDS_NARROWED:  # member.revoked now
            await push.apply_removal(info.context.rt, result.change)
        await processing_record.note_changes(info.context.rt, _actor(info))
        return PartnerChange.of(result.change, result.partner)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def retire_partner(self, info: Info, partner_id: strawberry.ID) -> PartnerChange:
        result = await partners_registry.retire(info.context.rt, _actor(info), str(partner_id))
        await push.apply_removal(info.context.rt, result.change)  # member.revoked now
        await processing_record.note_changes(info.context.rt, _actor(info))
        return PartnerChange.of(result.change, result.partner)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def issue_partner_credentials(self, info: Info, partner_id: strawberry.ID,
                                        scopes: list[str]) -> PartnerCredentials:
        issued = await oauth.issue_credentials(info.context.rt, _actor(info), str(partner_id),
                                               scopes)
        return PartnerCredentials(client_id=issued.client_id, client_secret=issued.client_secret,
                                  scopes=issued.scopes)

    @strawberry.mutation(permission_classes=[IsAdmin],
                         description="Admin token. Revoke a partner client: it gets no new tokens and its tokens stop working.")
    async def revoke_partner_credentials(self, info: Info, client_id: str) -> bool:
        return await oauth.revoke_credentials(info.context.rt, _actor(info), client_id)

    @strawberry.mutation(permission_classes=[IsMember], description="Member token: object to a partner's coming (or current consent-based) access to this member's data.")
    async def object_to_partner(self, info: Info, partner_id: strawberry.ID) -> UpcomingDisclosure:
        return UpcomingDisclosure.of(await objections.object_to(
            info.context.rt, principal_of(info).subject, str(partner_id)))

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin token.")
    async def record_partner_audit(self, info: Info, partner_id: strawberry.ID, at: datetime,
                                   outcome: PartnerAuditOutcome, next_due_at: datetime,
                                   notes: str | None = None) -> PartnerAudit:
        view = await audits.record(info.context.rt, _actor(info), str(partner_id), at=at,
                                   outcome=outcome, notes=notes, next_due_at=next_due_at)
        await processing_record.note_changes(info.context.rt, _actor(info))
        return PartnerAudit.of(view)

    @strawberry.mutation(permission_classes=[IsAdminOrPartner])
    async def record_purchase(self, info: Info, member_id: strawberry.ID, amount: str,
                              currency: str, reference: str) -> Purchase:
        rt = info.context.rt
        principal = principal_of(info)
        if principal.role == "PARTNER":
            await oauth.active_partner(rt, principal, "purchases:write")
        view = await purchases.record_purchase(rt, _actor(info), str(member_id), amount=amount,
                                               currency=currency, reference=reference)
        return Purchase(id=strawberry.ID(view.id), amount=view.amount, currency=view.currency,
                        reference=view.reference, at=view.at)
