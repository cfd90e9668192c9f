"""The contract's enums, exposed to GraphQL from the domain's own enum classes."""

from __future__ import annotations

import strawberry

from api.models import enums as e

Role = strawberry.enum(e.Role, name="Role")
MemberStatus = strawberry.enum(e.MemberStatus, name="MemberStatus")
ConsentState = strawberry.enum(e.ConsentState, name="ConsentState")
LegalBasis = strawberry.enum(e.LegalBasis, name="LegalBasis")
PartnerKind = strawberry.enum(e.PartnerKind, name="PartnerKind")
PartnerStatus = strawberry.enum(e.PartnerStatus, name="PartnerStatus")
PartnerChangeKind = strawberry.enum(e.PartnerChangeKind, name="PartnerChangeKind")
DataRequestKind = strawberry.enum(e.DataRequestKind, name="DataRequestKind")
DataRequestStatus = strawberry.enum(e.DataRequestStatus, name="DataRequestStatus")
PersonalField = strawberry.enum(e.PersonalField, name="PersonalField")
