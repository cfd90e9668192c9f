"""Data-subject requests (Art. 7): the request ledger, correction with restriction, admin resolution.

Every request is due 30 days after it was received (invariant 9). A CORRECTION request puts the
member in RESTRICTED: the grants logic shares a non-ACTIVE member with nobody, so push and pull
stop until it is completed, either by the member correcting every reported field through
``updateProfile`` (an ``api.profile.after_update`` hook) or by an admin resolving it. Completion
sends ``member.correction`` events to exactly the partners that received a corrected field.

Which fields were corrected since the request is read from the audit trail
(``member.update_profile`` entries list the changed field names), so a correction made over
several edits still completes the request.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api import (
    audit,
    disclosures,
    grants,
    members,
    notifications,
    outbox,
    partners_registry,
    profile,
    sharing,
)
from api.errors import BadInput, Conflict, NotFound
from api.members import MemberView, ProfileChange
from api.models.audit import AuditEntry
from api.models.enums import DataRequestKind, DataRequestStatus, MemberStatus, PersonalField
from api.models.member import Member
from api.models.partner import Disclosure
from api.models.rights import DataRequest
from api.partner_refs import partner_ref
from api.runtime import Runtime
from api.security.envelope import DataKey

__all__ = ["DUE_DAYS", "RequestView", "open_request", "member_requests", "list_requests",
           "report_inaccuracy", "resolve", "request_erasure", "note_label", "get_request",
           "read_notes"]

DUE_DAYS = 30
MAX_NOTE = 2000


@dataclass(frozen=True)
class RequestView:
    id: str
    member_id: str | None
    kind: DataRequestKind
    status: DataRequestStatus
    fields: list[PersonalField]
    received_at: datetime
    due_at: datetime
    resolved_at: datetime | None
    overdue_flagged_at: datetime | None


def _view(row: DataRequest) -> RequestView:
    return RequestView(str(row.id), str(row.member_id) if row.member_id else None, row.kind,
                       row.status, [PersonalField(f) for f in row.fields_ or []], row.received_at,
                       row.due_at, row.resolved_at, row.overdue_flagged_at)


def note_label(request_id: str) -> str:
    return f"data_request_note/{request_id}"


async def open_request(rt: Runtime, conn: BaseDBAsyncClient | None, *, member_id: str,
                       kind: DataRequestKind, fields: list[PersonalField] | None = None,
                       note: str | None = None, key: DataKey | None = None,
                       completed: bool = False, detail: dict | None = None) -> DataRequest:
    """Write a request due 30 days after now; ``completed`` for requests answered at once.

    It writes the transaction's one audit entry (``detail`` adds to it): a second
    ``audit.record`` in the same transaction could deadlock against concurrent appenders.
    """
    now = rt.now()
    request_id = uuid.uuid4()
    note_ct = None
    if note:
        assert key is not None, "a note is personal: it needs the member's data key"
        note_ct = key.encrypt(note_label(str(request_id)), json.dumps({"member": note}))
    row = await DataRequest.create(
        id=request_id, member_id=member_id, kind=kind,
        status=DataRequestStatus.COMPLETED if completed else DataRequestStatus.OPEN,
        fields_=[f.value for f in fields or []], note_ct=note_ct, received_at=now,
        due_at=now + timedelta(days=DUE_DAYS), resolved_at=now if completed else None,
        resolution="answered at once" if completed else None, using_db=conn)
    await audit.record(rt, f"member:{member_id}", f"data_request.{kind.value.lower()}",
                       str(request_id), {"member": member_id, "completed": completed,
                                         **(detail or {})}, using=conn)
    return row


async def member_requests(member_id: str) -> list[RequestView]:
    rows = await DataRequest.filter(member_id=member_id).order_by("received_at", "id")
    return [_view(r) for r in rows]


async def list_requests(status: DataRequestStatus | None = None) -> list[RequestView]:
    query = DataRequest.all() if status is None else DataRequest.filter(status=status)
    return [_view(r) for r in await query.order_by("due_at", "id")]


async def get_request(request_id: str) -> RequestView:
    row = await _row(request_id)
    return _view(row)


async def _row(request_id: str) -> DataRequest:
    try:
        uuid.UUID(str(request_id))
    except ValueError:
        raise NotFound("data request not found") from None
    row = await DataRequest.get_or_none(id=request_id)
    if row is None:
        raise NotFound("data request not found")
    return row


async def report_inaccuracy(rt: Runtime, member_id: str, fields: list[PersonalField],
                            note: str | None) -> RequestView:
    """Open a CORRECTION request and restrict the member until it is completed."""
    wanted = sorted(set(fields), key=lambda f: f.value)
    if not wanted:
        raise BadInput("name at least one field that is inaccurate", field="fields")
    if note is not None and len(note) > MAX_NOTE:
        raise BadInput(f"note is longer than {MAX_NOTE} characters", field="note")
    key = await members.data_key(rt, member_id)
    async with in_transaction("default") as conn:
        await Member.filter(id=member_id, status__in=[MemberStatus.ACTIVE]).using_db(conn).update(
            status=MemberStatus.RESTRICTED)
        row = await open_request(rt, conn, member_id=member_id, kind=DataRequestKind.CORRECTION,
                                 fields=wanted, note=note or None, key=key,
                                 detail={"restricted": True})
    return _view(row)


async def request_erasure(rt: Runtime, member_id: str) -> RequestView:
    """An ERASURE request for an admin to resolve (withdrawMembership is the immediate path)."""
    if await DataRequest.exists(member_id=member_id, kind=DataRequestKind.ERASURE,
                                status=DataRequestStatus.OPEN):
        raise Conflict("an erasure request is already open")
    async with in_transaction("default") as conn:
        row = await open_request(rt, conn, member_id=member_id, kind=DataRequestKind.ERASURE)
    return _view(row)


async def _corrected_since(member_id: str, since: datetime) -> set[str]:
    entries = await AuditEntry.filter(action="member.update_profile", subject=member_id,
                                      at__gte=since).values_list("detail", flat=True)
    return {f for detail in entries for f in (detail or {}).get("fields", [])}


async def _visible_now(rt: Runtime, partner_id: str, member_id: str) -> set[str]:
    """Fields (PersonalField values) this partner may see for this member once the restriction
    is lifted: the grant rule of ``api.grants``, with the member taken as ACTIVE."""
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
        payload = {"ref": partner_ref(rt.keys, partner_id, view.id)}
        payload.update({f.graphql: view.value(f) for f in corrected})
        plan.append(_Correction(partner_id, payload, [f.value for f in corrected],
                                rows[0].purpose, rows[0].legal_basis.value))
    return plan


async def _complete_correction(rt: Runtime, row: DataRequest, actor: str,
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
    await sharing.catch_up_member(rt, member_id)
    missed = await _corrected_since(member_id, row.received_at) - set(row.fields_ or [])
    if missed:
        changed = frozenset(PersonalField(f) for f in missed)
        await sharing.on_profile_update(rt, view, ProfileChange(member_id, changed))


async def _after_profile_update(rt: Runtime, view: MemberView, change: ProfileChange) -> None:
    if not change.changed:
        return
    rows = await DataRequest.filter(member_id=view.id, kind=DataRequestKind.CORRECTION,
                                    status=DataRequestStatus.OPEN).order_by("received_at")
    for row in rows:
        corrected = await _corrected_since(view.id, row.received_at)
        if set(row.fields_ or []) <= corrected:
            await _complete_correction(rt, row, f"member:{view.id}", DataRequestStatus.COMPLETED,
                                       "corrected by the member", catch_up=True)


profile.after_update.append(_after_profile_update)


async def resolve(rt: Runtime, admin_id: str, request_id: str, status: DataRequestStatus,
                  note: str | None) -> RequestView:
    """Admin answer to an open request. ERASURE completed runs the withdrawal path."""
    if status == DataRequestStatus.OPEN:
        raise BadInput("resolve to COMPLETED or REJECTED", field="status")
    if note is not None and len(note) > MAX_NOTE:
        raise BadInput(f"note is longer than {MAX_NOTE} characters", field="note")
    row = await _row(request_id)
    if row.status != DataRequestStatus.OPEN:
        raise Conflict("this request is already resolved")
    actor = f"admin:{admin_id}"
    resolution = f"{status.value.lower()} by an administrator"
    if row.member_id is not None and note:
        await _store_admin_note(rt, row, note)
    if row.kind == DataRequestKind.CORRECTION and row.member_id is not None:
        if not await _complete_correction(rt, row, actor, status, resolution):
            raise Conflict("this request is already resolved")
    elif (row.kind == DataRequestKind.ERASURE and status == DataRequestStatus.COMPLETED
          and row.member_id is not None):
        from api import erasure  # noqa: PLC0415 - erasure imports this module

        await erasure.destroy(rt, str(row.member_id), actor=actor, request_id=str(row.id))
    else:
        async with in_transaction("default") as conn:
            closed = await DataRequest.filter(id=row.id, status=DataRequestStatus.OPEN).using_db(
                conn).update(status=status, resolved_at=rt.now(), resolution=resolution)
            if not closed:
                raise Conflict("this request is already resolved")
            await audit.record(rt, actor, f"data_request.{status.value.lower()}", str(row.id),
                               {"member": str(row.member_id) if row.member_id else None},
                               using=conn)
    return _view(await DataRequest.get(id=row.id))


async def _store_admin_note(rt: Runtime, row: DataRequest, note: str) -> None:
    """The admin's note may describe the member: kept with the member's note, encrypted."""
    try:
        key = await members.data_key(rt, str(row.member_id))
    except NotFound:
        return
    label = note_label(str(row.id))
    notes = json.loads(key.decrypt(label, bytes(row.note_ct))) if row.note_ct else {}
    notes["admin"] = note
    await DataRequest.filter(id=row.id).update(note_ct=key.encrypt(label, json.dumps(notes)))


def read_notes(key: DataKey, row: DataRequest) -> dict[str, str]:
    """The member's (and admin's) notes of a request, for the member's own export."""
    if not row.note_ct:
        return {}
    return json.loads(key.decrypt(note_label(str(row.id)), bytes(row.note_ct)))
