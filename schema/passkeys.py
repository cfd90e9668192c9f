"""GraphQL for passkeys (thin: calls api.members.passkeys). Options go out and credentials come
in as the WebAuthn Level 3 JSON forms, so a browser passes them to and from
``navigator.credentials`` as they are."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.core.errors import Forbidden
from api.members import passkeys
from api.members.passkeys import PasskeyView
from api.platform import ratelimit
from schema.limits import once_if_anonymous
from schema.members import AuthPayload, _payload
from schema.permissions import IsMember, principal_of

__all__ = ["Passkey", "Mutation", "member_passkeys"]


@strawberry.type
class Passkey:
    id: strawberry.ID
    name: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_view(cls, view: PasskeyView) -> Passkey:
        return cls(id=strawberry.ID(view.id), name=view.name, created_at=view.created_at,
                   last_used_at=view.last_used_at)


async def member_passkeys(info: Info, member_id: str) -> list[Passkey]:
    """``Member.passkeys``: shown to the member only (``me``), not on an admin's member view."""
    principal = principal_of(info)
    if principal.role != "MEMBER" or principal.subject != member_id:
        raise Forbidden("passkeys are shown to their member only")
    return [Passkey.from_view(v) for v in await passkeys.list_for(info.context.rt, member_id)]


async def _per_address(info: Info, step: str) -> None:
    rt = info.context.rt
    await ratelimit.hit(rt, f"passkey-{step}-ip", rt.settings.rate_limit_login_ip,
                        info.context.client)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsMember],
                         description="Member token: PublicKeyCredentialCreationOptions as JSON.")
    async def begin_passkey_registration(self, info: Info) -> JSON:
        rt = info.context.rt
        member_id = principal_of(info).subject
        await ratelimit.hit(rt, "passkey-register", rt.settings.rate_limit_register_ip, member_id)
        return cast(JSON, await passkeys.begin_registration(rt, member_id))

    @strawberry.mutation(permission_classes=[IsMember])
    async def finish_passkey_registration(self, info: Info, credential: JSON,
                                          name: str | None = None) -> Passkey:
        view = await passkeys.finish_registration(info.context.rt, principal_of(info).subject,
                                                  credential, name)
        return Passkey.from_view(view)

    @strawberry.mutation(permission_classes=[IsMember])
    async def remove_passkey(self, info: Info, id: strawberry.ID) -> bool:
        return await passkeys.remove(info.context.rt, principal_of(info).subject, str(id))

    @strawberry.mutation(description="No token: PublicKeyCredentialRequestOptions as JSON "
                                     "(userId optional: discoverable credentials).")
    async def begin_passkey_login(self, info: Info, user_id: str | None = None) -> JSON:
        once_if_anonymous(info)
        await _per_address(info, "begin")
        return cast(JSON, await passkeys.begin_login(info.context.rt, user_id))

    @strawberry.mutation
    async def finish_passkey_login(self, info: Info, credential: JSON) -> AuthPayload:
        once_if_anonymous(info)
        await _per_address(info, "finish")
        pair = await passkeys.finish_login(info.context.rt, credential, info.context.user_agent)
        return await _payload(info, pair)
