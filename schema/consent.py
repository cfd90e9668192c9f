"""GraphQL for purposes, policy versions, consent and cookie choices (thin: calls api.*)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.consent import consents as consent
from api.consent import cookies, policy, purposes
from api.core.errors import Forbidden
from api.platform import ratelimit
from schema.enums import ConsentState, LegalBasis
from schema.limits import once_if_anonymous
from schema.permissions import IsAdmin, IsMember, principal_of


@strawberry.type
class Policy:
    version: str
    text: str
    effective_at: datetime

    @strawberry.field(description="The next version announced after this one, if any.")
    async def next(self, info: Info) -> Policy | None:
        view = await policy.next_after(info.context.rt, self.effective_at)
        return Policy.from_view(view) if view else None

    @classmethod
    def from_view(cls, view: policy.PolicyView) -> Policy:
        return cls(version=view.version, text=view.text, effective_at=view.effective_at)


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

    @classmethod
    def from_view(cls, view: consent.ConsentView) -> Consent:
        return cls(purpose=view.purpose, state=view.state, policy_version=view.policy_version,
                   at=view.at, receipt=view.receipt)


@strawberry.type
class CookiePreferences:
    device_id: str
    necessary: bool
    analytics: bool
    personalization: bool
    marketing: bool
    at: datetime


async def member_consents(info: Info, member_id: str) -> list[Consent]:
    """Current consent per purpose for ``Member.consents`` (latest event each, with receipt)."""
    return [Consent.from_view(v) for v in await consent.current(member_id)]


def _member_id(info: Info) -> str:
    return principal_of(info).subject


@strawberry.type
class Query:
    @strawberry.field(description="The policy in force now, and the next version if one is announced. Public.")
    async def policy(self, info: Info) -> Policy:
        return Policy.from_view(await policy.in_force(info.context.rt))

    @strawberry.field(description="Processing purposes a member can consent to. Public.")
    async def purposes(self, info: Info) -> list[Purpose]:
        return [Purpose(name=p.name, description=p.description, legal_basis=p.legal_basis,
                        required=p.required)
                for p in await purposes.list_purposes(info.context.rt)]

    @strawberry.field(description="The latest cookie choice recorded for a device (the banner reads it back); null when none. Public: the device id is the key.")
    async def cookie_preferences(self, info: Info, device_id: str) -> CookiePreferences | None:
        view = await cookies.current_for_device(cookies.validate_device_id(device_id))
        if view is None:
            return None
        return CookiePreferences(device_id=view.device_id, necessary=view.necessary,
                                 analytics=view.analytics, personalization=view.personalization,
                                 marketing=view.marketing, at=view.at)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsMember])
    async def give_consent(self, info: Info, purpose: str, policy_version: str) -> Consent:
        ctx = info.context
        view = await consent.give(ctx.rt, _member_id(info), purpose, policy_version,
                                  client=ctx.client, user_agent=ctx.user_agent)
        return Consent.from_view(view)

    @strawberry.mutation(permission_classes=[IsMember])
    async def withdraw_consent(self, info: Info, purpose: str) -> Consent:
        ctx = info.context
        view = await consent.withdraw(ctx.rt, _member_id(info), purpose, client=ctx.client,
                                      user_agent=ctx.user_agent)
        return Consent.from_view(view)

    @strawberry.mutation(description="No token needed; a member token links the choice to the member.")
    async def set_cookie_preferences(self, info: Info, device_id: str, analytics: bool,
                                     personalization: bool, marketing: bool) -> CookiePreferences:
        ctx = info.context
        if ctx.auth_error is not None:
            raise ctx.auth_error  # a token was sent but is bad: say so rather than ignore it
        member_id = None
        if ctx.principal is not None:
            if ctx.principal.role != "MEMBER":
                raise Forbidden("cookie choices are made by devices or members")
            member_id = ctx.principal.subject
        once_if_anonymous(info)
        device_id = cookies.validate_device_id(device_id)
        await ratelimit.check_cookie_choice(ctx.rt, device_id, ctx.client, member_id)
        view = await cookies.set_preferences(ctx.rt, device_id, analytics=analytics,
                                             personalization=personalization,
                                             marketing=marketing, member_id=member_id)
        return CookiePreferences(device_id=view.device_id, necessary=view.necessary,
                                 analytics=view.analytics, personalization=view.personalization,
                                 marketing=view.marketing, at=view.at)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def announce_policy(self, info: Info, version: str, text: str,
                              effective_at: datetime) -> Policy:
        actor = f"admin:{principal_of(info).subject}"
        view = await policy.announce(info.context.rt, actor, version, text, effective_at)
        return Policy.from_view(view)
