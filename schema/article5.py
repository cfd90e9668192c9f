"""GraphQL for Article 5: legal-process disclosures (four eyes) and k-anonymous research datasets.

Thin: each resolver calls ``api.rights.legal_disclosure`` or ``api.rights.research``.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.models import article5 as a5
from api.rights import legal_disclosure as legal
from api.rights import research
from schema.enums import LegalBasis, PersonalField
from schema.permissions import IsAdmin, principal_of

__all__ = ["Query", "Mutation", "LegalDisclosureStatus", "ResearchAttribute"]

LegalDisclosureStatus = a5.LegalDisclosureStatus
ResearchAttribute = a5.ResearchAttribute
for _enum in (LegalDisclosureStatus, ResearchAttribute):
    strawberry.enum(_enum, name=_enum.__name__)
del _enum


@strawberry.type
class LegalDisclosure:
    id: strawberry.ID
    member_id: strawberry.ID
    authority: str
    reference: str
    legal_basis: LegalBasis
    fields: list[PersonalField]
    justification: str
    notify_member: bool = strawberry.field(description="False only when the order forbids telling the member (recorded, and shown to them when the order lapses).")
    status: LegalDisclosureStatus
    requested_by: str
    decided_by: str | None
    requested_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, v: legal.LegalDisclosureView) -> LegalDisclosure:
        return cls(id=strawberry.ID(v.id), member_id=strawberry.ID(v.member_id),
                   authority=v.authority, reference=v.reference, legal_basis=v.legal_basis,
                   fields=list(v.fields), justification=v.justification,
                   notify_member=v.notify_member, status=v.status,
                   requested_by=v.requested_by, decided_by=v.decided_by,
                   requested_at=v.requested_at, decided_at=v.decided_at)


@strawberry.type
class ResearchDataset:
    id: strawberry.ID
    created_at: datetime
    k: int
    attributes: list[ResearchAttribute]
    rows: int = strawberry.field(description="Rows released; members whose equivalence class stayed under k are suppressed, not released.")
    suppressed: int
    data: JSON = strawberry.field(description="The released rows: attribute values only, no identifier that links across datasets.")


def _admin(info: Info) -> str:
    return principal_of(info).subject


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def legal_disclosures(self, info: Info, status: LegalDisclosureStatus | None = None
                                ) -> list[LegalDisclosure]:
        return [LegalDisclosure.of(v) for v in await legal.listed(status)]


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin token: opens a request; a second, different admin must decide it.")
    async def request_legal_disclosure(self, info: Info, member_id: strawberry.ID,
                                       authority: str, reference: str,
                                       legal_basis: LegalBasis, fields: list[PersonalField],
                                       justification: str,
                                       notify_member: bool) -> LegalDisclosure:
        view = await legal.request(
            info.context.rt, _admin(info), member_id=str(member_id), authority=authority,
            reference=reference, legal_basis=legal_basis, fields=list(fields),
            justification=justification, notify_member=notify_member)
        return LegalDisclosure.of(view)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin token of an admin other than the requester.")
    async def decide_legal_disclosure(self, info: Info, id: strawberry.ID, approve: bool,
                                      note: str | None = None) -> LegalDisclosure:
        return LegalDisclosure.of(await legal.decide(info.context.rt, _admin(info), str(id),
                                                     approve, note))

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin token: the approved fields, once; recorded as a disclosure.")
    async def release_legal_disclosure(self, info: Info, id: strawberry.ID) -> JSON:
        return cast(JSON, await legal.release(info.context.rt, _admin(info), str(id)))

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin token: a k-anonymous dataset of members who consented to `research`.")
    async def create_research_dataset(self, info: Info, k: int,
                                      attributes: list[ResearchAttribute]) -> ResearchDataset:
        d = await research.create_dataset(info.context.rt, f"admin:{_admin(info)}", k,
                                          list(attributes))
        return ResearchDataset(id=strawberry.ID(d.id), created_at=d.created_at, k=d.k,
                               attributes=list(d.attributes), rows=d.rows,
                               suppressed=d.suppressed, data=cast(JSON, d.data))
