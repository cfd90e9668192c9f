"""GraphQL for purposes, policy versions, consent and cookie choices (thin: calls api.consent)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from schema.enums import ConsentState, LegalBasis
from schema.permissions import IsAdmin, IsMember
from schema.stub import not_yet


@strawberry.type
class Policy:
    version: str
    text: str
    effective_at: datetime

    @strawberry.field
    async def next(self, info: Info) -> Policy | None:
        return None


@strawberry.type
class Purpose:
    name: str
    description: str
    legal_basis: LegalBasis
    required: bool


@strawberry.type
class Consent:
    purpose: str
    state: ConsentState
    policy_version: str
    at: datetime
    receipt: str = strawberry.field(description="A signed, self-verifying record of this consent event (compact JWS).")


@strawberry.type
class CookiePreferences:
    device_id: str
    necessary: bool
    analytics: bool
    personalization: bool
    marketing: bool
    at: datetime


async def member_consents(info: Info, member_id: str) -> list[Consent]:
    """Current consent per purpose for ``Member.consents``."""
    return []


@strawberry.type
class Query:
    @strawberry.field(description="The policy in force now, and the next version if one is announced. Public.")
    async def policy(self, info: Info) -> Policy:
        raise not_yet("policy")

    @strawberry.field(description="Processing purposes a member can consent to. Public.")
    async def purposes(self, info: Info) -> list[Purpose]:
        raise not_yet("purposes")


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsMember])
    async def give_consent(self, info: Info, purpose: str, policy_version: str) -> Consent:
        raise not_yet("giveConsent")

    @strawberry.mutation(permission_classes=[IsMember])
    async def withdraw_consent(self, info: Info, purpose: str) -> Consent:
        raise not_yet("withdrawConsent")

    @strawberry.mutation
    async def set_cookie_preferences(self, info: Info, device_id: str, analytics: bool,
                                     personalization: bool, marketing: bool) -> CookiePreferences:
        raise not_yet("setCookiePreferences")

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def announce_policy(self, info: Info, version: str, text: str,
                              effective_at: datetime) -> Policy:
        raise not_yet("announcePolicy")
