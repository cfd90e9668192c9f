"""Data-subject requests (Art. 7): the request ledger and admin resolution.

Every request is due 30 days after it was received (invariant 9). Reporting an inaccuracy
opens a CORRECTION request and restricts the member until it completes
(``api/rights/correction.py``); an ERASURE request completed by an admin runs the withdrawal
path (``api/rights/erasure.py``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Conflict, NotFound
from api.members import liveness
from api.members import records as members
from api.models.enums import DataRequestKind, DataRequestStatus, MemberStatus, PersonalField
from api.models.member import Member
from api.models.rights import DataRequest
from api.platform import audit
from api.platform.runtime import Runtime
from api.rights import correction, erasure
from api.security.envelope import DataKey
from api.sharing import revocation

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
                       completed: bool = False, detail: dict[str, Any] | None = None) -> DataRequest:
    """Write a request due 30 days after now; ``completed`` for requests answered at once.

    It writes the transaction's one audit entry (``detail`` adds to it): a second
    ``audit.record`` in the same transaction could deadlock against concurrent appenders.
    Refused (UNAUTHENTICATED) when the member no longer exists: a request nobody can answer.
    """
    await liveness.require_live(conn, member_id)
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
    """Open a CORRECTION request and restrict the member until it is completed; partners that
    received a reported field get ``member.restricted`` in the same transaction."""
    wanted = sorted(set(fields), key=lambda f: f.value)
    if not wanted:
        raise BadInput("name at least one field that is inaccurate", field="fields")
    if note is not None and len(note) > MAX_NOTE:
        raise BadInput(f"note is longer than {MAX_NOTE} characters", field="note")
    key = await members.data_key(rt, member_id)
    async with in_transaction("default") as conn:
        await Member.filter(id=member_id, status__in=[MemberStatus.ACTIVE]).using_db(conn).update(
            status=MemberStatus.RESTRICTED)
        told = await revocation.restrict(rt, conn, member_id, [f.value for f in wanted])
        row = await open_request(rt, conn, member_id=member_id, kind=DataRequestKind.CORRECTION,
                                 fields=wanted, note=note or None, key=key,
                                 detail={"restricted": True, "partnersTold": told})
    return _view(row)


async def request_erasure(rt: Runtime, member_id: str) -> RequestView:
    """An ERASURE request for an admin to resolve (withdrawMembership is the immediate path)."""
    if await DataRequest.exists(member_id=member_id, kind=DataRequestKind.ERASURE,
                                status=DataRequestStatus.OPEN):
        raise Conflict("an erasure request is already open")
    async with in_transaction("default") as conn:
        row = await open_request(rt, conn, member_id=member_id, kind=DataRequestKind.ERASURE)
    return _view(row)


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
        if not await correction.complete(rt, row, actor, status, resolution):
            raise Conflict("this request is already resolved")
    elif (row.kind == DataRequestKind.ERASURE and status == DataRequestStatus.COMPLETED
          and row.member_id is not None):
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
    notes: dict[str, str] = json.loads(key.decrypt(note_label(str(row.id)), bytes(row.note_ct)))
    return notes
