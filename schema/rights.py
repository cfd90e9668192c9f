"""GraphQL for data-subject rights: export, correction, withdrawal, admin request handling."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from schema.enums import DataRequestKind, DataRequestStatus, PersonalField
from schema.permissions import IsAdmin, IsMember
from schema.stub import not_yet


@strawberry.type
class DataRequest:
    id: strawberry.ID
    kind: DataRequestKind
    status: DataRequestStatus
    fields: list[PersonalField]
    received_at: datetime
    due_at: datetime
    resolved_at: datetime | None


@strawberry.type
class DataExport:
    format: str
    generated_at: datetime
    data: JSON = strawberry.field(description="Everything held about the member: profile, consents, disclosures, purchases, requests.")


@strawberry.type
class WithdrawalReceipt:
    withdrawn_at: datetime
    destroyed: bool = strawberry.field(description="True when every personal field was irreversibly destroyed at once.")
    retained_until: datetime | None = strawberry.field(description="Set when a legal duty keeps some data; when it will be destroyed.")
    retained_fields: list[PersonalField]
    partners_notified: list[str] = strawberry.field(description="Partners told to erase what they received.")


async def member_data_requests(info: Info, member_id: str) -> list[DataRequest]:
    """A member's requests for ``Member.dataRequests``."""
    return []


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def data_requests(self, info: Info,
                            status: DataRequestStatus | None = None) -> list[DataRequest]:
        raise not_yet("dataRequests")


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsMember])
    async def export_my_data(self, info: Info) -> DataExport:
        raise not_yet("exportMyData")

    @strawberry.mutation(permission_classes=[IsMember])
    async def report_inaccuracy(self, info: Info, fields: list[PersonalField],
                                note: str | None = None) -> DataRequest:
        raise not_yet("reportInaccuracy")

    @strawberry.mutation(permission_classes=[IsMember])
    async def withdraw_membership(self, info: Info, password: str) -> WithdrawalReceipt:
        raise not_yet("withdrawMembership")

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def resolve_data_request(self, info: Info, id: strawberry.ID,
                                   status: DataRequestStatus,
                                   note: str | None = None) -> DataRequest:
        raise not_yet("resolveDataRequest")
