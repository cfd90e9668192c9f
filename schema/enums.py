"""The contract's enums, exposed to GraphQL from the domain's own enum classes.

``strawberry.enum`` marks the class it is given and returns that same class; the names below
are plain aliases of the domain classes, so type checkers accept them as types.
"""

from __future__ import annotations

import strawberry

from api.models import enums as e

__all__ = ["Role", "MemberStatus", "ConsentState", "LegalBasis", "PartnerKind", "PartnerStatus",
           "PartnerChangeKind", "DataRequestKind", "DataRequestStatus", "PersonalField"]

Role = e.Role
MemberStatus = e.MemberStatus
ConsentState = e.ConsentState
LegalBasis = e.LegalBasis
PartnerKind = e.PartnerKind
PartnerStatus = e.PartnerStatus
PartnerChangeKind = e.PartnerChangeKind
DataRequestKind = e.DataRequestKind
DataRequestStatus = e.DataRequestStatus
PersonalField = e.PersonalField

for _enum in (Role, MemberStatus, ConsentState, LegalBasis, PartnerKind, PartnerStatus,
              PartnerChangeKind, DataRequestKind, DataRequestStatus, PersonalField):
    strawberry.enum(_enum, name=_enum.__name__)  # the GraphQL name is the class name
del _enum
