"""Enumerations shared by models, services and the GraphQL layer (names match the contract)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    MEMBER = "MEMBER"
    ADMIN = "ADMIN"
    PARTNER = "PARTNER"


class MemberStatus(StrEnum):
    ACTIVE = "ACTIVE"
    RESTRICTED = "RESTRICTED"
    DORMANT = "DORMANT"
    WITHDRAWN = "WITHDRAWN"


class ConsentState(StrEnum):
    GIVEN = "GIVEN"
    WITHDRAWN = "WITHDRAWN"


class LegalBasis(StrEnum):
    CONSENT = "CONSENT"
    CONTRACT = "CONTRACT"
    LEGAL_OBLIGATION = "LEGAL_OBLIGATION"
    VITAL_INTEREST = "VITAL_INTEREST"


class PartnerKind(StrEnum):
    IT_VENDOR = "IT_VENDOR"
    LOGISTICS = "LOGISTICS"
    PAYMENT = "PAYMENT"
    RESEARCH = "RESEARCH"
    OTHER = "OTHER"


class PartnerStatus(StrEnum):
    ANNOUNCED = "ANNOUNCED"
    ACTIVE = "ACTIVE"
    RETIRED = "RETIRED"


class PartnerChangeKind(StrEnum):
    ADDED = "ADDED"
    FIELDS_WIDENED = "FIELDS_WIDENED"
    FIELDS_NARROWED = "FIELDS_NARROWED"
    RETIRED = "RETIRED"


class DataRequestKind(StrEnum):
    ACCESS = "ACCESS"
    PORTABILITY = "PORTABILITY"
    CORRECTION = "CORRECTION"
    ERASURE = "ERASURE"
    RESTRICTION = "RESTRICTION"


class DataRequestStatus(StrEnum):
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"


class PersonalField(StrEnum):
    """Personal fields; ``.graphql`` is the name events and exports use, ``.column`` the model's."""

    USER_ID = "USER_ID"
    EMAIL = "EMAIL"
    FULL_NAME = "FULL_NAME"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    PHONE = "PHONE"
    ADDRESS = "ADDRESS"

    @property
    def graphql(self) -> str:
        head, *rest = self.value.lower().split("_")
        return head + "".join(part.title() for part in rest)

    @property
    def column(self) -> str:
        return self.value.lower()


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"
