"""Deletion duties: a partner told to delete (``member.erasure``, ``member.revoked``) must do so
within ``deletion_due_days`` (``CONSENTRY_DELETION_DUE_DAYS``, 30) and confirm it.

The outbox writes a duty with each deletion event (same transaction, keyed by the event id).
A duty is confirmed by the partner (``confirmDeletion``, scope ``events:ack``) or by its push
adapter's optional ``confirm`` (asked by the ``deletion_duties`` job). The job also mails the
admins once about each duty that went past its due date unconfirmed.

``me.disclosures`` shows a disclosure's duty (:func:`match`): a disclosure row is matched to the
earliest duty of the same partner and member created at or after it whose fields include any
field of the disclosure (the first deletion notice that covers what it gave).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from api.core.errors import BadInput
from api.members import notifications
from api.models.enums import OutboxStatus
from api.models.ops import HistoryPurge
from api.models.partner import OutboxEvent, Partner
from api.models.partner_loop import DeletionDuty
from api.platform import audit
from api.platform.runtime import Runtime
from api.sharing.bridge import DeliveryRun
from api.sharing.ledger import DisclosureView
from partners.base import PartnerAdapter

__all__ = ["DutyView", "MAX_IDS", "confirm", "listed", "for_member", "match", "deletion_duties",
           "overdue_count"]

log = logging.getLogger("consentry.sharing")
MAX_IDS = 100
_ACTOR = "job:deletion_duties"


@dataclass(frozen=True)
class DutyView:
    event_id: str
    partner_id: str
    member_id: str | None
    kind: str
    fields: list[str]
    created_at: datetime
    due_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str | None


def _view(d: DeletionDuty) -> DutyView:
    return DutyView(str(d.event_id), str(d.partner_id), str(d.member_id) if d.member_id else None,
                    d.kind, list(d.fields_ or []), d.created_at, d.due_at, d.confirmed_at,
                    d.confirmed_by)


def _ids(raw: Iterable[str]) -> list[uuid.UUID]:
    out: list[uuid.UUID] = []
    for value in raw:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            raise BadInput("an event id is not a deletion event of this partner",
                           field="eventIds") from None
    return out


async def confirm(rt: Runtime, partner_id: str, event_ids: Sequence[str]) -> int:
    """The partner carried out these deletion events. Every id must be a deletion event of
    this partner, otherwise BAD_USER_INPUT and nothing is confirmed. Returns how many were
    newly confirmed (confirming twice is not an error)."""
    if not event_ids:
        raise BadInput("name at least one event", field="eventIds")
    if len(event_ids) > MAX_IDS:
        raise BadInput(f"at most {MAX_IDS} events at a time", field="eventIds")
    wanted = set(_ids(event_ids))
    async with in_transaction("default") as conn:
        found = await DeletionDuty.filter(event_id__in=list(wanted),
                                          partner_id=partner_id).using_db(conn).count()
        if found != len(wanted):
            raise BadInput("an event id is not a deletion event of this partner",
                           field="eventIds")
        now = rt.now()
        newly = await DeletionDuty.filter(event_id__in=list(wanted), partner_id=partner_id,
                                          confirmed_at=None).using_db(conn).update(
            confirmed_at=now, confirmed_by="partner")
        if newly:
            await audit.record(rt, f"partner:{partner_id}", "partner.deletion_confirmed",
                               partner_id, {"events": sorted(str(i) for i in wanted),
                                            "newly": newly}, using=conn)
    return newly


async def listed(rt: Runtime, overdue: bool | None = None) -> list[DutyView]:
    """Duties for admins, oldest due first; ``overdue`` True: unconfirmed past due only;
    False: the others."""
    query = DeletionDuty.all()
    now = rt.now()
    if overdue is True:
        query = query.filter(confirmed_at=None, due_at__lte=now)
    rows = [_view(d) for d in await query.order_by("due_at", "event_id")]
    if overdue is False:
        rows = [d for d in rows if d.confirmed_at is not None or d.due_at > now]
    return rows


async def overdue_count(now: datetime) -> int:
    return await DeletionDuty.filter(confirmed_at=None, due_at__lte=now).count()


async def for_member(member_id: str) -> list[DutyView]:
    rows = await DeletionDuty.filter(member_id=member_id).order_by("created_at", "event_id")
    return [_view(d) for d in rows]


def match(disclosure: DisclosureView, duties: Iterable[DutyView]) -> DutyView | None:
    """The duty shown with a disclosure (rule in the module docstring)."""
    given = set(disclosure.fields)
    for duty in sorted(duties, key=lambda d: (d.created_at, d.event_id)):
        if (duty.partner_id == disclosure.partner_id and duty.created_at >= disclosure.at
                and given & set(duty.fields)):
            return duty
    return None


# --- the job -----------------------------------------------------------------------------------

async def _adapter_confirmations(rt: Runtime) -> int:
    """Ask push adapters that implement ``confirm`` about their open, delivered duties. Only
    those partners' duties are read: the open duties of an adapter that cannot tell (the
    webhook's), however many, stay in the database instead of being loaded every run."""
    partner_ids = sorted({str(p) for p in await DeletionDuty.filter(
        confirmed_at=None).distinct().values_list("partner_id", flat=True)})
    run = DeliveryRun(rt, {}, {}, {}, asyncio.Lock())
    confirmed = 0
    try:
        for partner_id in partner_ids:
            partner = await Partner.get_or_none(id=partner_id)
            if partner is None:
                continue
            try:
                adapter = await run.adapter(partner)
                if type(adapter).confirm is PartnerAdapter.confirm:
                    continue  # the base class's: this adapter cannot tell
                ids = [str(e) for e in await DeletionDuty.filter(
                    partner_id=partner_id, confirmed_at=None, event_id__in=Subquery(
                        OutboxEvent.filter(partner_id=partner_id, status=OutboxStatus.DELIVERED)
                        .values("id"))).order_by("created_at").values_list("event_id", flat=True)]
                if not ids:
                    continue
                said = {str(i) for i in await adapter.confirm(list(ids))} & set(ids)
            except Exception as exc:  # ask again next run; never echo the adapter's message
                log.warning("deletion confirmations of partner %s failed: %s", partner_id,
                            type(exc).__name__)
                continue
            if not said:
                continue
            async with in_transaction("default") as conn:
                n = await DeletionDuty.filter(event_id__in=sorted(said), partner_id=partner_id,
                                              confirmed_at=None).using_db(conn).update(
                    confirmed_at=rt.now(), confirmed_by="adapter")
                if n:
                    await audit.record(rt, _ACTOR, "partner.deletion_confirmed", partner_id,
                                       {"events": sorted(said), "newly": n, "by": "adapter"},
                                       using=conn)
            confirmed += n
    finally:
        await run.close()
    return confirmed


async def _mail_overdue(rt: Runtime) -> int:
    """One mail per admin about each overdue duty, once (``overdue_mailed_at``). It names the
    partner and the event, never the member."""
    now = rt.now()
    due = await DeletionDuty.filter(confirmed_at=None, overdue_mailed_at=None,
                                    due_at__lte=now).order_by("due_at")
    names = {str(p.id): p.name for p in await Partner.filter(
        id__in=list({d.partner_id for d in due}))} if due else {}
    mailed = 0
    for duty in due:
        async with in_transaction("default") as conn:
            if not await DeletionDuty.filter(event_id=duty.event_id,
                                             overdue_mailed_at=None).using_db(conn).update(
                    overdue_mailed_at=now):
                continue
            partner = names.get(str(duty.partner_id), str(duty.partner_id))
            await notifications.notify_admins(
                rt, conn, kind="deletion_duty.overdue",
                subject=f"{partner} has not confirmed a deletion",
                body=(f"Partner {partner} was told to delete data ({duty.kind}, event "
                      f"{duty.event_id}) by {duty.due_at.isoformat()} and has not confirmed "
                      "it. See deletionDuties(overdue: true) in the admin API."))
            await audit.record(rt, _ACTOR, "deletion_duty.overdue", str(duty.event_id),
                               {"partner": str(duty.partner_id), "kind": duty.kind,
                                "dueAt": duty.due_at.isoformat()}, using=conn)
        mailed += 1
    return mailed


async def _forget_destroyed() -> int:
    """A destroyed member's duties stay (the partner still owes the deletion) without the
    member's id, like the rest of what destruction leaves. Destroyed members are the ones
    queued for ``history_purge`` (which forgets them in the duties too as it purges them), so
    this reads that short queue: checking every duty against the members table was a scan of
    all members each run (minutes at a million)."""
    return await DeletionDuty.filter(
        member_id__in=Subquery(HistoryPurge.all().values("member_id"))).update(member_id=None)


async def deletion_duties(rt: Runtime) -> dict[str, int]:
    """The ``deletion_duties`` job: forget destroyed members' ids, ask adapters for
    confirmations, then mail the admins about overdue duties."""
    await _forget_destroyed()
    confirmed = await _adapter_confirmations(rt)
    return {"confirmed": confirmed, "overdue_mailed": await _mail_overdue(rt)}
