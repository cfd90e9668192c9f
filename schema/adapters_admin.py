"""Admin-only GraphQL listing the partner adapters this deployment can use (extra, not in the
contract): the console offers exactly these when a partner is announced, with the personal
fields each adapter can take, so an admin never guesses a name the API would refuse."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.models import enums as e
from api.sharing import adapters
from api.sharing import registry as partners_registry
from schema.enums import PersonalField
from schema.permissions import IsAdmin

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
