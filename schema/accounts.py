"""GraphQL for the account lifecycle (contract v2 "accounts", passkeys aside): email
verification, password reset and change, sessions. Thin: the rules live in ``api.members``."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.core.errors import Forbidden
from api.members import auth, password_reset, sessions, verification
from api.members.sessions import SessionView
from api.platform import ratelimit
from schema.limits import once_if_anonymous
from schema.permissions import IsMember, principal_of

__all__ = ["Session", "Mutation", "member_sessions"]


@strawberry.type
class Session:
    id: strawberry.ID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    current: bool = strawberry.field(
        description="True for the session whose token made this request.")

    @classmethod
    def from_view(cls, view: SessionView, current_sid: str) -> Session:
        return cls(id=strawberry.ID(view.id), created_at=view.created_at,
                   last_used_at=view.last_used_at, user_agent=view.user_agent,
                   current=bool(current_sid) and view.id == current_sid)


async def member_sessions(info: Info, member_id: str) -> list[Session]:
    """The member's own sessions; nobody else's (admins included) are listed."""
    principal = principal_of(info)
    if principal.role != "MEMBER" or principal.subject != member_id:
        raise Forbidden("only the member sees their sessions")
    views = await sessions.list_sessions(info.context.rt, member_id)
    return [Session.from_view(v, principal.sid) for v in views]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="No token: the single-use token arrives by mail.")
    async def verify_email(self, info: Info, token: str) -> bool:
        once_if_anonymous(info)
        await ratelimit.check_session(info.context.rt, info.context.client)
        return await verification.verify(info.context.rt, token)

    @strawberry.mutation(
        description="Always true, whether or not the address belongs to a member.")
    async def request_password_reset(self, info: Info, email: str) -> bool:
        once_if_anonymous(info)
        return await password_reset.request(info.context.rt, email, info.context.client)

    @strawberry.mutation(description="No token: the single-use token arrives by mail.")
    async def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        once_if_anonymous(info)
        await ratelimit.check_session(info.context.rt, info.context.client)
        return await password_reset.reset(info.context.rt, token, new_password)

    @strawberry.mutation(permission_classes=[IsMember], description="Member token.")
    async def resend_email_verification(self, info: Info) -> bool:
        return await verification.resend(info.context.rt, principal_of(info).subject)

    @strawberry.mutation(permission_classes=[IsMember], description="Member token.")
    async def change_password(self, info: Info, current_password: str,
                              new_password: str) -> bool:
        principal = principal_of(info)
        return await auth.change_password(info.context.rt, principal.subject, principal.sid,
                                          current_password, new_password)

    @strawberry.mutation(permission_classes=[IsMember], description="Member token.")
    async def revoke_session(self, info: Info, id: strawberry.ID) -> bool:
        await sessions.revoke_session(info.context.rt, principal_of(info).subject, str(id))
        return True

    @strawberry.mutation(permission_classes=[IsMember], description="Member token.")
    async def sign_out_everywhere(self, info: Info) -> bool:
        await sessions.revoke_subject(info.context.rt, principal_of(info).subject)
        return True
