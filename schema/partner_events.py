"""GraphQL for the partner loop's events: ``partnerEvents`` (the pull twin of push),
``confirmDeletion`` (scope ``events:ack``) and the admins' ``deletionDuties``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import strawberry
from strawberry.types import Info

from api.models import enums as e
from api.models.partner import Partner as PartnerRow
from api.sharing import duties, events_feed, oauth
from schema.enums import PersonalField
from schema.pagination import PageInfo, page_size
from schema.partners import SharedMember
from schema.permissions import IsAdmin, IsPartner, principal_of

__all__ = ["Query", "Mutation", "PartnerEvent", "DeletionDuty"]


def _sorted(fields: Iterable[e.PersonalField]) -> list[PersonalField]:
    order = list(e.PersonalField)
    return sorted(fields, key=order.index)


@strawberry.type
class PartnerEvent:
    id: strawberry.ID = strawberry.field(description="The same id the push adapter receives: deduplicate on it.")
    type: str
    at: datetime
    member: SharedMember
    fields: list[PersonalField] = strawberry.field(description="Fields the event concerns: shared, updated, corrected, or to delete.")


@strawberry.type
class PartnerEventEdge:
    cursor: str
    node: PartnerEvent


@strawberry.type
class PartnerEventConnection:
    edges: list[PartnerEventEdge]
    page_info: PageInfo


@strawberry.type
class DeletionDuty:
    event_id: strawberry.ID
    partner_id: strawberry.ID
    partner: str
    kind: str
    fields: list[PersonalField]
    created_at: datetime
    due_at: datetime
    confirmed_at: datetime | None
    overdue: bool


def _node(ev: events_feed.FeedEvent) -> PartnerEvent:
    f = e.PersonalField
    born = ev.values.get(f.DATE_OF_BIRTH)
    member = SharedMember(ref=strawberry.ID(ev.ref), user_id=ev.values.get(f.USER_ID),
                          email=ev.values.get(f.EMAIL), full_name=ev.values.get(f.FULL_NAME),
                          date_of_birth=date.fromisoformat(born) if born else None,
                          phone=ev.values.get(f.PHONE), address=ev.values.get(f.ADDRESS))
    return PartnerEvent(id=strawberry.ID(ev.id), type=ev.type, at=ev.at, member=member,
                        fields=_sorted(ev.fields))


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsPartner], description="Partner token: this partner's events (the pull twin of push delivery), oldest first.")
    async def partner_events(self, info: Info, first: int | None = 100,
                             after: str | None = None) -> PartnerEventConnection:
        rt = info.context.rt
        partner_id = await oauth.active_partner(rt, principal_of(info), "members:read")
        page = await events_feed.partner_events(rt, partner_id, page_size(first, 100), after)
        return PartnerEventConnection(
            edges=[PartnerEventEdge(cursor=ev.cursor, node=_node(ev)) for ev in page.events],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor))

    @strawberry.field(permission_classes=[IsAdmin], description="Admin token: partners' duties to delete what a member.erasure or member.revoked listed; overdue: unconfirmed past their due date.")
    async def deletion_duties(self, info: Info, overdue: bool | None = None) -> list[DeletionDuty]:
        rt = info.context.rt
        rows = await duties.listed(rt, overdue)
        names = {str(p.id): p.name for p in await PartnerRow.filter(
            id__in=list({d.partner_id for d in rows}))} if rows else {}
        now = rt.now()
        return [DeletionDuty(event_id=strawberry.ID(d.event_id),
                             partner_id=strawberry.ID(d.partner_id),
                             partner=names.get(d.partner_id, ""), kind=d.kind,
                             fields=_sorted(e.PersonalField(f) for f in d.fields),
                             created_at=d.created_at, due_at=d.due_at,
                             confirmed_at=d.confirmed_at,
                             overdue=d.confirmed_at is None and d.due_at <= now)
                for d in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsPartner], description="Partner token with scope events:ack: the erasure/revocation events were carried out. Returns how many were newly confirmed.")
    async def confirm_deletion(self, info: Info, event_ids: list[strawberry.ID]) -> int:
        rt = info.context.rt
        partner_id = await oauth.active_partner(rt, principal_of(info), "events:ack")
        return await duties.confirm(rt, partner_id, [str(i) for i in event_ids])
