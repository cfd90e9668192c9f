"""Before a partner change takes effect: what it would disclose, and the member's objection.

``upcoming_for`` answers ``me.upcomingDisclosures``: for each announced change not yet in force
(``registry.upcoming``), the partner as it will stand at the change's ``effective_at`` and the
grant the one grant rule (``api.sharing.grants``) would give it with the member's facts of now.
A CONTRACT partner is listed with the fields it would receive from the member's first purchase
when there is none yet: the member learns of it before it can happen, not after.

``object_to`` records an objection (``objectToPartner``). The grant rule reads it: nothing goes
to that partner on a consent basis, now or when its change takes effect. A CONTRACT partner keeps
its required fields; the objection is recorded, counted for the admins (``objection_count``)
and the member is told that the service needs that partner. When the member is in the
partner's consent scope now, ``api.sharing.revocation.revoke_for_objection`` sends
``member.revoked`` at once for what the partner may no longer hold.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.core.errors import NotFound
from api.members import notifications
from api.models.enums import LegalBasis, MemberStatus, PartnerStatus, PersonalField
from api.models.member import Member
from api.models.partner_audits import PartnerObjection
from api.platform import audit
from api.platform.runtime import Runtime
from api.sharing import registry, revocation
from api.sharing.grants import MemberFacts, PartnerState, grant_for, member_facts

__all__ = ["Upcoming", "upcoming_for", "object_to", "objection_count", "forget_member"]


@dataclass(frozen=True)
class Upcoming:
    partner_id: str
    partner: str
    fields: list[PersonalField]
    legal_basis: LegalBasis
    effective_at: datetime
    objected: bool


def _would_give(state: PartnerState, facts: MemberFacts) -> list[PersonalField]:
    facts = dataclasses.replace(facts, status=MemberStatus.ACTIVE)
    if state.legal_basis == LegalBasis.CONTRACT and not facts.has_purchase:
        facts = dataclasses.replace(facts, has_purchase=True)  # from the first purchase on
    grant = grant_for(dataclasses.replace(state, status=PartnerStatus.ACTIVE), facts)
    return sorted(grant.fields, key=lambda f: f.value) if grant else []


async def _objected(member_id: str) -> set[str]:
    return {str(p) for p in await PartnerObjection.filter(member_id=member_id).values_list(
        "partner_id", flat=True)}


async def upcoming_for(rt: Runtime, member_id: str) -> list[Upcoming]:
    """Announced changes not yet in force that concern the member, soonest first."""
    member = await Member.get_or_none(id=member_id)
    if member is None:
        return []
    now = rt.now()
    current = {s.id: s for s in await registry.states(rt, now)}
    live = [pid for pid, s in current.items() if s.status != PartnerStatus.RETIRED]
    changes = await registry.upcoming(rt, live)
    objected = await _objected(member_id)
    out: list[Upcoming] = []
    for pid, pending in changes.items():
        for change in pending:
            future = await registry.state(rt, pid, change.effective_at)
            if future.status != PartnerStatus.ACTIVE:
                continue  # retired by then: it gives nothing
            facts = (await member_facts([member], [future], now))[member_id]
            fields = _would_give(future, facts)
            if fields or pid in objected:
                out.append(Upcoming(pid, future.name, fields, future.legal_basis,
                                    change.effective_at, pid in objected))
    return sorted(out, key=lambda u: (u.effective_at, u.partner))


async def _record(rt: Runtime, member_id: str, partner: PartnerState, now: datetime) -> None:
    async with in_transaction("default") as conn:
        await PartnerObjection.create(id=uuid.uuid4(), member_id=member_id,
                                      partner_id=partner.id, at=now, using_db=conn)
        if partner.legal_basis == LegalBasis.CONTRACT:
            await notifications.notify(
                rt, conn, member_id=member_id, kind="partner.objection",
                subject=f"Your objection to {partner.name} is recorded",
                body=(f"We recorded your objection to {partner.name}. It receives your data "
                      "under a contract (to deliver what you buy), which the service cannot "
                      "provide without it, so it keeps receiving the fields it needs for your "
                      "orders; nothing beyond them, and nothing on a consent basis, goes to it."))
        await audit.record(rt, f"member:{member_id}", "partner.objection", partner.id,
                           {"member": member_id, "basis": partner.legal_basis.value},
                           using=conn)


async def object_to(rt: Runtime, member_id: str, partner_id: str) -> Upcoming:
    """Record the objection (idempotent); unknown or retired partner: NotFound."""
    now = rt.now()
    partner = await registry.state(rt, partner_id, now)  # NotFound for an unknown id
    if partner.status == PartnerStatus.RETIRED:
        raise NotFound("partner not found")
    pid = partner.id
    created = not await PartnerObjection.exists(member_id=member_id, partner_id=pid)
    if created:
        try:
            await _record(rt, member_id, partner, now)
        except IntegrityError:  # a concurrent objection of the same member won
            created = False
    if created:
        await revocation.revoke_for_objection(rt, member_id, pid)
    pending = (await registry.upcoming(rt, [pid]))[pid]
    at = pending[0].effective_at if pending else now
    future = await registry.state(rt, pid, at)
    member = await Member.get(id=member_id)
    facts = (await member_facts([member], [future], now))[member_id]
    return Upcoming(pid, future.name, _would_give(future, facts), future.legal_basis, at, True)


async def objection_count(partner_id: str) -> int:
    """How many members objected to this partner, for the admins."""
    return await PartnerObjection.filter(partner_id=partner_id).count()


async def forget_member(member_id: str, conn: BaseDBAsyncClient | None = None) -> int:
    """A destroyed member's objections go with it."""
    return await PartnerObjection.filter(member_id=member_id).using_db(conn).delete()
