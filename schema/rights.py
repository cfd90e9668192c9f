"""GraphQL for data-subject rights: export, correction, withdrawal, admin request handling.

Thin: each resolver calls ``api.rights.requests``, ``api.rights.export`` or ``api.rights.erasure`` and maps the result.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.rights import erasure, export, processing_record
from api.rights import requests as rights
from schema.enums import DataRequestKind, DataRequestStatus, PersonalField
from schema.permissions import IsAdmin, IsMember, principal_of


@strawberry.type
class DataRequest:
    id: strawberry.ID
    kind: DataRequestKind
    status: DataRequestStatus
    fields: list[PersonalField]
    received_at: datetime
    due_at: datetime
    resolved_at: datetime | None
    overdue_flagged_at: datetime | None = strawberry.field(
        default=None, description="When the deadline job flagged it as near or past its due date.")

    @classmethod
    def from_view(cls, v: rights.RequestView) -> DataRequest:
        return cls(id=strawberry.ID(v.id), kind=v.kind, status=v.status, fields=list(v.fields),
                   received_at=v.received_at, due_at=v.due_at, resolved_at=v.resolved_at,
                   overdue_flagged_at=v.overdue_flagged_at)


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
    receipt: str = strawberry.field(description="Signed record (compact JWS, verifiable with /.well-known/jwks.json) of what was destroyed, what is kept until when, and which partners were told.")


async def member_data_requests(info: Info, member_id: str) -> list[DataRequest]:
    """A member's requests for ``Member.dataRequests``."""
    return [DataRequest.from_view(v) for v in await rights.member_requests(member_id)]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def data_requests(self, info: Info,
                            status: DataRequestStatus | None = None) -> list[DataRequest]:
        return [DataRequest.from_view(v) for v in await rights.list_requests(status)]

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token: the record of processing activities (GDPR Art. 30) derived from what runs now.")
    async def processing_record(self, info: Info) -> JSON:
        rt = info.context.rt
        record = await processing_record.build(rt)
        await processing_record.note_changes(rt, f"admin:{principal_of(info).subject}", record)
        return cast(JSON, record)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsMember])
    async def export_my_data(self, info: Info) -> DataExport:
        doc = await export.export(info.context.rt, principal_of(info).subject)
        return DataExport(format=doc["format"], generated_at=doc["generated_at"],
                          data=doc["data"])

    @strawberry.mutation(permission_classes=[IsMember])
    async def report_inaccuracy(self, info: Info, fields: list[PersonalField],
                                note: str | None = None) -> DataRequest:
        view = await rights.report_inaccuracy(info.context.rt, principal_of(info).subject,
                                              list(fields), note)
        return DataRequest.from_view(view)

    @strawberry.mutation(permission_classes=[IsMember])
    async def withdraw_membership(self, info: Info, password: str) -> WithdrawalReceipt:
        r = await erasure.withdraw(info.context.rt, principal_of(info).subject, password)
        return WithdrawalReceipt(withdrawn_at=r.withdrawn_at, destroyed=r.destroyed,
                                 retained_until=r.retained_until,
                                 retained_fields=list(r.retained_fields),
                                 partners_notified=list(r.partners_notified),
                                 receipt=r.receipt)

    @strawberry.mutation(permission_classes=[IsMember],
                         description="Member token. Ask for erasure; an admin resolves it "
                                     "(withdrawMembership erases at once).")
    async def request_erasure(self, info: Info) -> DataRequest:
        return DataRequest.from_view(
            await rights.request_erasure(info.context.rt, principal_of(info).subject))

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def resolve_data_request(self, info: Info, id: strawberry.ID,
                                   status: DataRequestStatus,
                                   note: str | None = None) -> DataRequest:
        view = await rights.resolve(info.context.rt, principal_of(info).subject, str(id), status,
                                    note)
        return DataRequest.from_view(view)
