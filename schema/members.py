"""GraphQL for members and sign-in (thin: calls api.members.records, api.members.auth, api.members.sessions)."""

from __future__ import annotations

import base64
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from api.consent import consents as consent
from api.consent.views import ConsentView
from api.core.errors import BadInput, Forbidden
from api.members import admin_members, auth, profile, sessions, verification
from api.members import records as members
from api.members.records import MemberView
from api.platform import ratelimit
from schema.accounts import Session, member_sessions
from schema.consent import Consent, member_consents
from schema.enums import MemberStatus, Role
from schema.limits import once_if_anonymous
from schema.pagination import PageInfo, page_size
from schema.partners import Disclosure, UpcomingDisclosure, member_disclosures, member_upcoming
from schema.permissions import IsAdmin, IsMember, principal_of
from schema.rights import DataRequest, member_data_requests

if TYPE_CHECKING:  # schema.passkeys imports this module (AuthPayload)
    from schema.passkeys import Passkey


@strawberry.type
class Member:
    id: strawberry.ID
    user_id: str
    email: str
    full_name: str
    date_of_birth: date | None
    phone: str | None
    address: str | None
    status: MemberStatus
    created_at: datetime
    last_active_at: datetime
    email_verified: bool = False
    pending_email: str | None = strawberry.field(
        default=None, description="An email change that waits for the new address to be confirmed.")
    # ``me`` reads the member and its current consents in one statement; None: read on demand.
    read_consents: strawberry.Private[list[ConsentView] | None] = None

    @classmethod
    def from_view(cls, view: MemberView) -> Member:
        return cls(id=strawberry.ID(view.id), user_id=view.user_id, email=view.email,
                   full_name=view.full_name, date_of_birth=view.date_of_birth,
                   phone=view.phone, address=view.address, status=view.status,
                   created_at=view.created_at, last_active_at=view.last_active_at,
                   email_verified=view.email_verified, pending_email=view.pending_email)

    @strawberry.field(description="The member's own sessions (member token of this member).")
    async def sessions(self, info: Info) -> list[Session]:
        return await member_sessions(info, str(self.id))

    @strawberry.field
    async def consents(self, info: Info) -> list[Consent]:
        if self.read_consents is not None:
            return [Consent.from_view(v) for v in self.read_consents]
        return await member_consents(info, str(self.id))

    @strawberry.field
    async def disclosures(self, info: Info) -> list[Disclosure]:
        return await member_disclosures(info, str(self.id))

    @strawberry.field(description="Announced partner changes, not yet in force, that would disclose this member's data.")
    async def upcoming_disclosures(self, info: Info) -> list[UpcomingDisclosure]:
        return await member_upcoming(info, str(self.id))

    @strawberry.field
    async def data_requests(self, info: Info) -> list[DataRequest]:
        return await member_data_requests(info, str(self.id))

    @strawberry.field
    async def passkeys(self, info: Info) -> list[Annotated[Passkey, strawberry.lazy("schema.passkeys")]]:
        from schema.passkeys import member_passkeys
        return await member_passkeys(info, str(self.id))


@strawberry.type
class MemberEdge:
    cursor: str
    node: Member


@strawberry.type
class MemberConnection:
    edges: list[MemberEdge]
    page_info: PageInfo


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_in: int
    role: Role
    member: Member | None


@strawberry.input
class RegisterInput:
    user_id: str
    email: str
    full_name: str
    password: str
    date_of_birth: date | None = None
    phone: str | None = None
    address: str | None = None


@strawberry.input
class ProfileInput:
    email: str | None = strawberry.UNSET
    full_name: str | None = strawberry.UNSET
    date_of_birth: date | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET


async def _payload(info: Info, pair: sessions.TokenPair) -> AuthPayload:
    member = None
    if pair.role == "MEMBER":
        member = Member.from_view(await members.get_view(info.context.rt, pair.subject))
    return AuthPayload(access_token=pair.access_token, refresh_token=pair.refresh_token,
                       expires_in=pair.expires_in, role=Role(pair.role), member=member)


def _cursor(member_id: str) -> str:
    return base64.urlsafe_b64encode(member_id.encode()).decode()


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return str(uuid.UUID(base64.urlsafe_b64decode(cursor.encode()).decode()))
    except ValueError:
        raise BadInput("after is not a cursor from this list", field="after") from None


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in member. Member token.")
    async def me(self, info: Info) -> Member | None:
        principal = principal_of(info)
        if principal.role != "MEMBER":
            raise Forbidden("me needs a member token")
        view, consents = await consent.member_and_current(info.context.rt, principal.subject)
        member = Member.from_view(view)
        member.read_consents = consents
        return member

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token.")
    async def members(self, info: Info, first: int | None = 50, after: str | None = None,
                      status: MemberStatus | None = None) -> MemberConnection:
        size = page_size(first)
        page = await admin_members.admin_page(info.context.rt, principal_of(info).subject, size,
                                              _after(after), status)
        edges = [MemberEdge(cursor=_cursor(v.id), node=Member.from_view(v)) for v in page.views]
        return MemberConnection(edges=edges, page_info=PageInfo(
            has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None))

    @strawberry.field(permission_classes=[IsAdmin],
                      description="Admin token. Every call is written to the audit trail.")
    async def member(self, info: Info, id: strawberry.ID) -> Member | None:
        view = await admin_members.read(info.context.rt, principal_of(info).subject, str(id))
        return Member.from_view(view) if view else None


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register(self, info: Info, input: RegisterInput) -> AuthPayload:
        rt = info.context.rt
        once_if_anonymous(info)
        await ratelimit.check_register(rt, input.user_id, info.context.client)
        view = await verification.register(
            rt, user_id=input.user_id, email=input.email, full_name=input.full_name,
            password=input.password, date_of_birth=input.date_of_birth, phone=input.phone,
            address=input.address)
        return await _payload(info, await sessions.start(rt, "MEMBER", view.id,
                                                         info.context.user_agent))

    @strawberry.mutation
    async def login(self, info: Info, user_id: str, password: str,
                    otp: str | None = None) -> AuthPayload:
        once_if_anonymous(info)
        await ratelimit.check_login(info.context.rt, user_id, info.context.client)
        return await _payload(info, await auth.login(info.context.rt, user_id, password, otp,
                                                     info.context.user_agent))

    @strawberry.mutation
    async def refresh(self, info: Info, refresh_token: str) -> AuthPayload:
        once_if_anonymous(info)
        await ratelimit.check_session(info.context.rt, info.context.client)
        return await _payload(info, await sessions.rotate(info.context.rt, refresh_token))

    @strawberry.mutation
    async def logout(self, info: Info, refresh_token: str) -> bool:
        once_if_anonymous(info)
        await ratelimit.check_session(info.context.rt, info.context.client)
        return await sessions.end(info.context.rt, refresh_token)

    @strawberry.mutation(permission_classes=[IsMember])
    async def update_profile(self, info: Info, input: ProfileInput) -> Member:
        changes: dict[str, Any] = {
            name: value for name, value in (
                ("email", input.email), ("full_name", input.full_name),
                ("date_of_birth", input.date_of_birth), ("phone", input.phone),
                ("address", input.address),
            ) if value is not strawberry.UNSET
        }
        view = await profile.update(info.context.rt, principal_of(info).subject, changes)
        return Member.from_view(view)

