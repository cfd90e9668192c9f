"""GraphQL for outsourcing partners, purchases, pull access and the disclosure ledger."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from schema.enums import LegalBasis, PartnerChangeKind, PartnerKind, PartnerStatus, PersonalField
from schema.pagination import PageInfo
from schema.permissions import IsAdmin, IsAdminOrPartner, IsPartner
from schema.stub import not_yet


@strawberry.type
class Partner:
    id: strawberry.ID
    name: str
    kind: PartnerKind
    purpose: str
    adapter: str
    status: PartnerStatus
    fields: list[PersonalField]
    optional_fields: list[PersonalField]
    upcoming: list[PartnerChange]


@strawberry.type
class PartnerChange:
    id: strawberry.ID
    kind: PartnerChangeKind
    partner: Partner
    announced_at: datetime
    effective_at: datetime
    fields: list[PersonalField]
    optional_fields: list[PersonalField]


@strawberry.type
class PublicPartner:
    id: strawberry.ID
    name: str
    kind: PartnerKind
    purpose: str
    status: PartnerStatus
    fields: list[PersonalField]
    optional_fields: list[PersonalField]
    upcoming: list[PartnerChange] = strawberry.field(description="Changes announced and not yet in force.")


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


async def member_disclosures(info: Info, member_id: str) -> list[Disclosure]:
    """The ledger for ``Member.disclosures``."""
    return []


@strawberry.type
class Query:
    @strawberry.field(description="The outsourcing partners, with announced (not yet effective) changes. Public.")
    async def outsourcing_partners(self, info: Info) -> list[PublicPartner]:
        raise not_yet("outsourcingPartners")

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def partners(self, info: Info) -> list[Partner]:
        raise not_yet("partners")

    @strawberry.field(permission_classes=[IsPartner], description="Partner token: only the members and fields this partner may see now.")
    async def shared_members(self, info: Info, first: int | None = 100,
                             after: str | None = None) -> SharedMemberConnection:
        raise not_yet("sharedMembers")


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def announce_partner(self, info: Info, input: PartnerInput) -> PartnerChange:
        raise not_yet("announcePartner")

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def change_partner_fields(self, info: Info, partner_id: strawberry.ID,
                                    fields: list[PersonalField],
                                    optional_fields: list[PersonalField]) -> PartnerChange:
        raise not_yet("changePartnerFields")

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def retire_partner(self, info: Info, partner_id: strawberry.ID) -> PartnerChange:
        raise not_yet("retirePartner")

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def issue_partner_credentials(self, info: Info, partner_id: strawberry.ID,
                                        scopes: list[str]) -> PartnerCredentials:
        raise not_yet("issuePartnerCredentials")

    @strawberry.mutation(permission_classes=[IsAdminOrPartner])
    async def record_purchase(self, info: Info, member_id: strawberry.ID, amount: str,
                              currency: str, reference: str) -> Purchase:
        raise not_yet("recordPurchase")
