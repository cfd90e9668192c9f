"""Admin-only GraphQL the console needs beyond the contract (extra operations, thin resolvers).

``partnerAdapters``: the adapters this deployment can use, with the personal fields each can
take, so the announce form offers exactly what the API accepts. ``memberLookup``: one member
by exact user id or email (staff answer members who quote either), audited like ``member``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.members import admin_members
from api.models import enums as e
from api.sharing import adapters
from api.sharing import registry as partners_registry
from schema.enums import PersonalField
from schema.members import Member
from schema.permissions import IsAdmin, principal_of

__all__ = ["PartnerAdapterInfo", "Query"]


@strawberry.type(description="An installed, usable partner adapter plugin.")
class PartnerAdapterInfo:
    name: str
    accepts: list[PersonalField] = strawberry.field(
        description="Personal fields the adapter can take; a partner is never granted more.")


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="Admin token: the partner adapters usable here (allowed, no test fakes in production), by name.")
    async def partner_adapters(self, info: Info) -> list[PartnerAdapterInfo]:
        rt = info.context.rt
        order = list(e.PersonalField)
        return [PartnerAdapterInfo(name=name, accepts=sorted(
                    partners_registry.adapter_accepts(rt, name), key=order.index))
                for name in sorted(adapters.adapter_infos(rt))]

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token: one member by exact userId or email (give one). Every call is written to the audit trail.")
    async def member_lookup(self, info: Info, user_id: str | None = None,
                            email: str | None = None) -> Member | None:
        view = await admin_members.find(info.context.rt, principal_of(info).subject,
                                        user_id=user_id, email=email)
        return Member.from_view(view) if view else None
