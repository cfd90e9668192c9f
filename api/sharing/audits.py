"""Partner audits (policy 6.2): recorded by admins; a FAILED one suspends all sharing at once.

The latest audit of a partner (by ``at``, then when it was recorded) is the one in force. While
it is FAILED the partner is suspended, kept as one ``PartnerSuspension`` row: pull answers
FORBIDDEN (:func:`ensure_not_suspended`), and the delivery queue claims none of the partner's
events (``api/sharing/queue.py``), so they wait in the outbox, PENDING, without spending
attempts. A later PASSED or FINDINGS audit lifts it; the queue then hands over what waited,
erasures and revocations first, each re-checked against the grants of that moment by the bridge.

An audit past its ``nextDueAt`` is mailed to the admins once per due date (the
``partner_audits`` job), naming only the partner.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Forbidden, NotFound
from api.members import notifications
from api.models.member import Admin
from api.models.partner import Partner
from api.models.partner_audits import PartnerAudit, PartnerAuditOutcome, PartnerSuspension
from api.platform import audit
from api.platform.runtime import Runtime

__all__ = ["AuditView", "NOTES_MAX", "record", "audits_for", "next_due", "suspended_ids",
           "is_suspended", "ensure_not_suspended", "mail_overdue"]

NOTES_MAX = 4000
_ACTOR = "job:partner_audits"


@dataclass(frozen=True)
class AuditView:
    id: str
    partner_id: str
    at: datetime
    outcome: PartnerAuditOutcome
    notes: str | None
    next_due_at: datetime
    auditor: str


def _view(row: PartnerAudit) -> AuditView:
    return AuditView(str(row.id), str(row.partner_id), row.at, PartnerAuditOutcome(row.outcome),
                     row.notes, row.next_due_at, row.auditor)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(f"{name} needs an explicit UTC offset", field=name)
    return value.astimezone(UTC)


def _partner_uuid(partner_id: str) -> str:
    try:
        return str(uuid.UUID(str(partner_id)))
    except ValueError:
        raise NotFound("partner not found") from None


async def record(rt: Runtime, actor: str, partner_id: str, *, at: datetime,
                 outcome: PartnerAuditOutcome, notes: str | None,
                 next_due_at: datetime) -> AuditView:
    """``recordPartnerAudit`` by ``actor`` (``admin:<id>``: the auditor is named by the admin's
    user id); the suspension follows the latest audit, in one transaction."""
    at, next_due_at = _aware(at, "at"), _aware(next_due_at, "nextDueAt")
    if next_due_at < at:
        raise BadInput("nextDueAt must not be before at", field="nextDueAt")
    if notes is not None and (len(notes) > NOTES_MAX or "\x00" in notes):
        raise BadInput(f"notes must be at most {NOTES_MAX} characters", field="notes")
    pid = _partner_uuid(partner_id)
    now = rt.now()
    auditor = actor
    if actor.startswith("admin:"):
        row_admin = await Admin.get_or_none(id=_partner_uuid(actor.removeprefix("admin:")))
        auditor = row_admin.user_id if row_admin is not None else actor
    async with in_transaction("default") as conn:
        if not await Partner.filter(id=pid).using_db(conn).exists():
            raise NotFound("partner not found")
        row = await PartnerAudit.create(id=uuid.uuid4(), partner_id=pid, at=at,
                                        outcome=PartnerAuditOutcome(outcome).value, notes=notes,
                                        next_due_at=next_due_at, auditor=auditor[:200],
                                        recorded_at=now, using_db=conn)
        latest = await PartnerAudit.filter(partner_id=pid).using_db(conn).order_by(
            "-at", "-recorded_at").first()
        suspended = latest is not None and latest.outcome == PartnerAuditOutcome.FAILED
        was = await PartnerSuspension.filter(partner_id=pid).using_db(conn).exists()
        if suspended and not was and latest is not None:
            await PartnerSuspension.create(partner_id=pid, since=now, audit_id=latest.id,
                                           using_db=conn)
        elif was and not suspended:
            await PartnerSuspension.filter(partner_id=pid).using_db(conn).delete()
        await audit.record(rt, actor, "partner.audit", pid, {
            "audit": str(row.id), "outcome": row.outcome, "at": at.isoformat(),
            "nextDueAt": next_due_at.isoformat(),
            **({"suspended": suspended} if suspended != was else {})}, using=conn)
    return _view(row)


async def audits_for(partner_ids: Iterable[str]) -> dict[str, list[AuditView]]:
    """Each partner's audits, newest first."""
    ids = sorted({str(p) for p in partner_ids})
    out: dict[str, list[AuditView]] = {pid: [] for pid in ids}
    if ids:
        for row in await PartnerAudit.filter(partner_id__in=ids).order_by("-at", "-recorded_at"):
            out[str(row.partner_id)].append(_view(row))
    return out


async def next_due(partner_ids: Iterable[str]) -> dict[str, datetime | None]:
    """The latest audit's ``nextDueAt`` per partner (None: never audited)."""
    return {pid: (rows[0].next_due_at if rows else None)
            for pid, rows in (await audits_for(partner_ids)).items()}


async def suspended_ids() -> set[str]:
    return {str(p) for p in await PartnerSuspension.all().values_list("partner_id", flat=True)}


async def is_suspended(partner_id: str) -> bool:
    return await PartnerSuspension.filter(partner_id=partner_id).exists()


async def ensure_not_suspended(partner_id: str) -> None:
    """Pull's gate: a suspended partner reads nothing (FORBIDDEN)."""
    if await is_suspended(partner_id):
        raise Forbidden("sharing with this partner is suspended after a failed audit")


async def mail_overdue(rt: Runtime) -> dict[str, int]:
    """The ``partner_audits`` job: one mail per admin for each partner whose latest audit is
    past its ``nextDueAt`` and was not mailed about yet (once per due date)."""
    now = rt.now()
    partners = {str(p.id): p.name for p in await Partner.filter(retired_at=None)}
    latest = {pid: rows[0] for pid, rows in (await audits_for(partners)).items() if rows}
    mailed = 0
    for pid, view in sorted(latest.items()):
        if view.next_due_at > now:
            continue
        async with in_transaction("default") as conn:
            if not await PartnerAudit.filter(id=view.id, overdue_mailed_at=None).using_db(
                    conn).update(overdue_mailed_at=now):
                continue
            name = partners[pid]
            await notifications.notify_admins(
                rt, conn, kind="partner_audit.overdue",
                subject=f"The audit of {name} is overdue",
                body=(f"Partner {name} was due for its next audit on "
                      f"{view.next_due_at.date().isoformat()}. Record it with "
                      "recordPartnerAudit in the admin API."))
            await audit.record(rt, _ACTOR, "partner_audit.overdue", pid,
                               {"audit": view.id, "dueAt": view.next_due_at.isoformat()},
                               using=conn)
        mailed += 1
    return {"overdue_mailed": mailed}
