"""``member.revoked`` and ``member.restricted``: telling partners what they must stop holding.

``member.revoked``: a partner that received fields of a member that are no longer granted to
it (consent for its purpose or for ``partner:<id>`` withdrawn, an objection, its fields
narrowed, the partner retired) gets one event listing those fields, and with it a deletion
duty (``api/sharing/outbox.py``). The rule is stated on what happened, not on the trigger, so
every trigger runs the same :func:`revoke` and running it twice sends nothing twice:

    to revoke = fields the ledger says the partner received (since they were last revoked)
                minus the fields the grant rule gives the partner now.

The grant is taken with the member as ACTIVE: a restriction (an inaccuracy report) or dormancy
is not the member leaving a scope, and is told differently (``member.restricted``) or not at all.
Destroyed members are covered by ``member.erasure`` instead.

Triggers: :func:`on_consent_changed` (a subscriber declared in the composition root), the
partner-change job for narrowings and retirements (``api.sharing.push``, in the transaction that
marks the change applied), and :func:`revoke_for_objection` for the objection path.

``member.restricted``: :func:`restrict` writes, in the caller's transaction (the inaccuracy
report), one event per partner that received a reported field, listing the reported fields it
received; the later ``member.correction`` is written after it, so its id is higher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent.events import ConsentChanged
from api.core.errors import BadInput, NotFound
from api.models.enums import ConsentState, MemberStatus
from api.models.member import Member
from api.models.partner import Disclosure, OutboxEvent
from api.platform.runtime import Runtime
from api.sharing import ledger, outbox
from api.sharing import registry as partners_registry
from api.sharing.grants import PartnerState, grant_for, member_facts
from api.sharing.refs import partner_ref

__all__ = ["Revocation", "plan", "revoke", "revoke_partner", "revoke_for_objection",
           "on_consent_changed", "restrict"]


@dataclass(frozen=True)
class Revocation:
    partner_id: str
    member_id: str
    fields: list[str]  # PersonalField values
    purpose: str
    legal_basis: str


async def _state(rt: Runtime, partner_id: str, at: datetime,
                 conn: BaseDBAsyncClient | None = None) -> PartnerState | None:
    try:
        return await partners_registry.state(rt, partner_id, at, conn=conn)
    except (NotFound, BadInput):
        return None


async def plan(rt: Runtime, partner_id: str, member_ids: Iterable[str],
               conn: BaseDBAsyncClient | None = None) -> list[Revocation]:
    """What :func:`revoke` would send this partner about these members now."""
    ids = sorted({str(m) for m in member_ids})
    if not ids:
        return []
    now = rt.now()
    rows = await Disclosure.filter(partner_id=partner_id, member_id__in=ids,
                                   channel__in=ledger.PARTNER_CHANNELS).using_db(conn).order_by(
        "at").values("member_id", "fields_", "at", "purpose", "legal_basis")
    if not rows:
        return []
    sent: dict[str, dict[str, datetime]] = {}
    basis: dict[str, tuple[str, str]] = {}
    for r in rows:
        mid = str(r["member_id"])
        for f in r["fields_"] or []:
            sent.setdefault(mid, {})[f] = r["at"]
        basis[mid] = (r["purpose"], str(r["legal_basis"]))
    told: dict[str, dict[str, datetime]] = {}
    for ev in await OutboxEvent.filter(partner_id=partner_id, member_id__in=list(sent),
                                       type="member.revoked").using_db(conn).values(
            "member_id", "payload_plain", "created_at"):
        for f in (ev["payload_plain"] or {}).get("fields", []):
            mine = told.setdefault(str(ev["member_id"]), {})
            mine[f] = max(mine.get(f, ev["created_at"]), ev["created_at"])
    state = await _state(rt, partner_id, now, conn)
    members = await Member.filter(id__in=list(sent)).using_db(conn)
    facts = await member_facts(members, [state], now) if state is not None else {}
    out: list[Revocation] = []
    for m in sorted(members, key=lambda m: str(m.id)):
        mid = str(m.id)
        grant = (grant_for(state, dataclasses.replace(facts[mid], status=MemberStatus.ACTIVE))
                 if state is not None else None)
        granted = {f.value for f in grant.fields} if grant is not None else set()
        before = told.get(mid, {})
        due = sorted(f for f, at in sent[mid].items()
                     if f not in granted and (f not in before or at > before[f]))
        if due:
            out.append(Revocation(partner_id, mid, due, *basis[mid]))
    return out


async def _write(rt: Runtime, conn: BaseDBAsyncClient, items: list[Revocation]) -> int:
    for item in items:
        await outbox.enqueue(rt, conn, partner_id=item.partner_id, member_id=item.member_id,
                             type="member.revoked",
                             member={"ref": partner_ref(rt.keys, item.partner_id, item.member_id)},
                             fields=item.fields, purpose=item.purpose,
                             legal_basis=item.legal_basis, key=None)
    return len(items)


async def revoke(rt: Runtime, member_id: str, partner_ids: Iterable[str] | None = None,
                 conn: BaseDBAsyncClient | None = None) -> int:
    """``member.revoked`` to each partner (default: every partner that received this member's
    data) holding fields no longer granted; in ``conn`` when given. Returns events written."""
    wanted = (sorted(set(partner_ids)) if partner_ids is not None
              else await ledger.partners_that_received(member_id))
    items = [r for pid in wanted for r in await plan(rt, pid, [member_id], conn)]
    if not items:
        return 0
    if conn is not None:
        return await _write(rt, conn, items)
    async with in_transaction("default") as tx:
        return await _write(rt, tx, items)


async def revoke_partner(rt: Runtime, partner_id: str, conn: BaseDBAsyncClient) -> int:
    """Every member this partner received data of (a narrowing, a retirement)."""
    received = await Disclosure.filter(partner_id=partner_id,
                                       channel__in=ledger.PARTNER_CHANNELS).using_db(
        conn).distinct().values_list("member_id", flat=True)
    return await _write(rt, conn, await plan(rt, partner_id, [str(m) for m in received], conn))


async def revoke_for_objection(rt: Runtime, member_id: str, partner_id: str) -> int:
    """The objection path: call it after the objection is committed (the grant rule must
    already see it). Sends ``member.revoked`` for whatever the partner received and may no
    longer hold; nothing when the partner keeps a basis (a contract)."""
    return await revoke(rt, member_id, [partner_id])


async def on_consent_changed(rt: Runtime, event: ConsentChanged) -> None:
    """A withdrawal (or any non-GIVEN state): partners whose purpose, or whose
    ``partner:<id>`` purpose, it was are told what they must delete."""
    if event.state == ConsentState.GIVEN:
        return
    concerned = set(await partners_registry.concerned_by(event.purpose))
    if not concerned:
        return
    received = await ledger.partners_that_received(event.member_id)
    affected = []
    for pid in (p for p in received if p in concerned):
        state = await _state(rt, pid, rt.now())
        if state is not None and event.purpose in (state.purpose, state.consent_purpose):
            affected.append(pid)
    if affected:
        await revoke(rt, event.member_id, affected)


async def restrict(rt: Runtime, conn: BaseDBAsyncClient, member_id: str,
                   fields: Iterable[str]) -> list[str]:
    """``member.restricted`` (in ``conn``) to each partner that received any of ``fields``
    (PersonalField values), listing the ones it received. Returns the partner ids told."""
    reported = set(fields)
    rows = await Disclosure.filter(member_id=member_id,
                                   channel__in=ledger.PARTNER_CHANNELS).using_db(conn).order_by(
        "at").values("partner_id", "fields_", "purpose", "legal_basis")
    received: dict[str, set[str]] = {}
    basis: dict[str, tuple[str, str]] = {}
    for r in rows:
        pid = str(r["partner_id"])
        hit = reported & set(r["fields_"] or [])
        if hit:
            received.setdefault(pid, set()).update(hit)
        basis[pid] = (r["purpose"], str(r["legal_basis"]))
    for pid in sorted(received):
        await outbox.enqueue(rt, conn, partner_id=pid, member_id=member_id,
                             type="member.restricted",
                             member={"ref": partner_ref(rt.keys, pid, member_id)},
                             fields=sorted(received[pid]), purpose=basis[pid][0],
                             legal_basis=basis[pid][1], key=None)
    return sorted(received)
