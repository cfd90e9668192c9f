"""Correction with restriction (Art. 7): completing a CORRECTION request.

A CORRECTION request puts the member in RESTRICTED (``api/rights/requests.py``): the grant rule
shares a non-ACTIVE member with nobody, so push and pull stop. It completes when the member
has edited every reported field (:func:`on_profile_changed`, a subscriber declared in the
composition root) or when an admin resolves it. Completion sends ``member.correction`` to
exactly the partners that received a corrected field.

Which fields were corrected since the request is read from the audit trail
(``member.update_profile`` entries list the changed field names), so a correction made over
several edits still completes the request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from tortoise.transactions import in_transaction

from api.core.errors import NotFound
from api.members import notifications
from api.members import records as members
from api.members.events import ProfileChanged
from api.members.records import MemberView, ProfileChange
from api.models.audit import AuditEntry
from api.models.enums import DataRequestKind, DataRequestStatus, MemberStatus, PersonalField
from api.models.member import Member
from api.models.partner import Disclosure
from api.models.rights import DataRequest
from api.platform import audit
from api.platform.runtime import Runtime
from api.sharing import grants, outbox, push
from api.sharing import ledger as disclosures
from api.sharing import registry as partners_registry
from api.sharing.refs import partner_ref

__all__ = ["complete", "on_profile_changed"]


async def _corrected_since(member_id: str, since: datetime) -> set[str]:
    # flat=True yields the details themselves; tortoise types every values_list as tuples.
    entries = cast(list[dict[str, Any] | None],
                   await AuditEntry.filter(action="member.update_profile", subject=member_id,
                                           at__gte=since).values_list("detail", flat=True))
    return {f for detail in entries for f in (detail or {}).get("fields", [])}


async def _visible_now(rt: Runtime, partner_id: str, member_id: str) -> set[str]:
    """Fields (PersonalField values) this partner may see for this member once the restriction
    is lifted: the grant rule of ``api.sharing.grants``, with the member taken as ACTIVE."""
    try:
        partner = await partners_registry.state(rt, partner_id)
    except NotFound:
        return set()
    member = await Member.get_or_none(id=member_id)
    if member is None:
        return set()
    facts = (await grants.member_facts([member], [partner], rt.now()))[member_id]
    grant = grants.grant_for(partner, replace(facts, status=MemberStatus.ACTIVE))
    return set() if grant is None else {f.value for f in grant.fields}


@dataclass(frozen=True)
class _Correction:
    partner_id: str
    payload: dict[str, str | None]
    fields: list[str]
    purpose: str
    legal_basis: str


async def _correction_plan(rt: Runtime, view: MemberView,
                           fields: list[PersonalField]) -> list[_Correction]:
    """One ``member.correction`` event per partner that received a corrected field before,
    holding the corrected values of the fields that partner may see now."""
    partner_ids: set[str] = set()
    for f in fields:
        partner_ids.update(await disclosures.partners_that_received(view.id, f.value))
    plan = []
    for partner_id in sorted(partner_ids):
        rows = await Disclosure.filter(member_id=view.id, partner_id=partner_id).order_by("-at")
        received = {f for r in rows for f in (r.fields_ or [])}
        visible = await _visible_now(rt, partner_id, view.id)
        corrected = [f for f in fields if f.value in visible and f.value in received]
        payload: dict[str, str | None] = {"ref": partner_ref(rt.keys, partner_id, view.id)}
        payload.update({f.graphql: view.value(f) for f in corrected})
        plan.append(_Correction(partner_id, payload, [f.value for f in corrected],
                                rows[0].purpose, rows[0].legal_basis.value))
    return plan


async def complete(rt: Runtime, row: DataRequest, actor: str,
                               status: DataRequestStatus, resolution: str,
                               catch_up: bool = False) -> bool:
    """Close one CORRECTION request; lift the restriction when none is left open."""
    member_id = str(row.member_id)
    key = await members.data_key(rt, member_id)
    plan: list[_Correction] = []
    if status == DataRequestStatus.COMPLETED:
        view = await members.get_view(rt, member_id)
        plan = await _correction_plan(rt, view, [PersonalField(f) for f in row.fields_ or []])
    async with in_transaction("default") as conn:
        closed = await DataRequest.filter(id=row.id, status=DataRequestStatus.OPEN).using_db(
            conn).update(status=status, resolved_at=rt.now(), resolution=resolution)
        if not closed:
            return False
        still_open = await DataRequest.filter(
            member_id=member_id, kind=DataRequestKind.CORRECTION,
            status=DataRequestStatus.OPEN).using_db(conn).exists()
        if not still_open:
            await Member.filter(id=member_id, status=MemberStatus.RESTRICTED).using_db(
                conn).update(status=MemberStatus.ACTIVE)
        for item in plan:
            await outbox.enqueue(rt, conn, partner_id=item.partner_id, member_id=member_id,
                                 type="member.correction", member=item.payload,
                                 fields=item.fields, purpose=item.purpose,
                                 legal_basis=item.legal_basis, key=key)
        sent = [item.partner_id for item in plan]
        if status == DataRequestStatus.COMPLETED:
            await notifications.notify(
                rt, conn, member_id=member_id, kind="correction.completed",
                subject="Your correction request is complete",
                body="The correction you asked for is complete. Partners that received the "
                     "corrected details have been sent the corrected values.")
        await audit.record(rt, actor, f"data_request.{status.value.lower()}", str(row.id),
                           {"member": member_id, "partners": sent, "restricted": still_open},
                           using=conn)
    if not still_open and catch_up:
        await _catch_up(rt, member_id, row)
    return True


async def _catch_up(rt: Runtime, member_id: str, row: DataRequest) -> None:
    """Nothing was shared while restricted. Once the member's own edit lifts the restriction
    (an admin's resolution is caught up by the ``sharing_catch_up`` job), partners whose
    scope the member entered meanwhile get the full record (``member.shared``), and fields
    edited meanwhile go out as the usual ``member.updated`` (reported fields excepted: they went
    out as corrections)."""
    view = await members.get_view(rt, member_id)
    if view.status != MemberStatus.ACTIVE:
        return
    await push.catch_up_member(rt, member_id)
    missed = await _corrected_since(member_id, row.received_at) - set(row.fields_ or [])
    if missed:
        changed = frozenset(PersonalField(f) for f in missed)
        await push.on_profile_changed(rt, ProfileChanged(view, ProfileChange(member_id, changed)))


async def on_profile_changed(rt: Runtime, event: ProfileChanged) -> None:
    """Complete every open CORRECTION request whose reported fields have all been edited."""
    view, change = event.view, event.change
    if not change.changed:
        return
    rows = await DataRequest.filter(member_id=view.id, kind=DataRequestKind.CORRECTION,
                                    status=DataRequestStatus.OPEN).order_by("received_at")
    for row in rows:
        corrected = await _corrected_since(view.id, row.received_at)
        if set(row.fields_ or []) <= corrected:
            await complete(rt, row, f"member:{view.id}", DataRequestStatus.COMPLETED,
                                       "corrected by the member", catch_up=True)
