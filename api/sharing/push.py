"""Push: partner events written to the outbox when a member's grant or shared data changes.

Which event, when (every decision goes through :func:`api.sharing.grants.grant_for`):

- ``member.shared``: the member's grant for a partner gained fields (entered its scope by a
  purchase, a consent, or a partner change coming into force; or gained optional fields by
  consenting to ``partner:<id>``). It carries the FULL record granted now, so a partner can
  upsert it by ref without keeping history.
- ``member.updated``: the member edited fields the partner is granted; it carries ONLY the
  changed granted fields (a cleared field is sent as null).
- Leaving a scope or losing fields (withdrawal, objection, narrowing, retirement): the partner
  stops receiving at once (pull and push both re-check the grant, and the delivery bridge
  re-checks it again before sending, ``api/sharing/bridge.py``), and ``member.revoked`` tells it
  which fields it received must be deleted (``api/sharing/revocation.py``; narrowings and
  retirements here, when the job marks the change applied). A restriction is told as
  ``member.restricted`` by the inaccuracy report. ``member.erasure`` is reserved for erasure on
  membership withdrawal (contract invariant 7), sent elsewhere.

Transactions: ``recordPurchase`` enqueues in the purchase's own transaction (api.sharing.purchases);
the partner-change job enqueues in the transaction that marks the change applied. Profile and
consent changes are committed by their owners before they publish their events, so those
events are written in a second transaction right after; the delivery-time grant check keeps a
late or stale event from ever exceeding the grant, and the ``sharing_catch_up`` job sends
``member.shared`` to any member granted now that a partner was never sent (an event lost to a
crash, a restriction lifted by an admin, a dormant member back).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent.events import ConsentChanged
from api.members import records as members
from api.members.events import ProfileChanged
from api.members.records import MemberView
from api.models.enums import (
    ConsentState,
    LegalBasis,
    MemberStatus,
    OutboxStatus,
    PartnerChangeKind,
    PersonalField,
)
from api.models.member import Member
from api.models.partner import OutboxEvent, PartnerChange
from api.platform.runtime import Runtime
from api.security.envelope import DataKey
from api.sharing import outbox, revocation
from api.sharing import registry as partners_registry
from api.sharing.grants import (
    Grant,
    MemberFacts,
    PartnerState,
    grant_for,
    member_facts,
    receivable,
)
from api.sharing.pull import candidates, granted_values
from api.sharing.refs import partner_ref

__all__ = ["enqueue_grant", "push_gains", "on_profile_changed", "on_consent_changed",
           "bring_changes_into_force", "apply_removal", "in_force_partners", "catch_up_member",
           "catch_up", "CATCH_UP_EVERY"]

log = logging.getLogger("consentry.sharing")
_BATCH = 500
CATCH_UP_EVERY = timedelta(minutes=10)
_CAUGHT_UP = "sharing.caught_up_at"


async def in_force_partners(rt: Runtime, at: datetime | None = None,
                            conn: BaseDBAsyncClient | None = None) -> list[PartnerState]:
    return [p for p in await partners_registry.states(rt, at, conn=conn) if p.in_force]


async def enqueue_grant(rt: Runtime, conn: BaseDBAsyncClient | None, *, partner: PartnerState,
                        member_id: str, key: DataKey, values: dict[PersonalField, str | None],
                        grant: Grant, type: str, fields: frozenset[PersonalField]) -> str | None:
    """One outbox event holding ``fields`` (all within ``grant``) under the partner's ref.

    ``member.updated`` sends a cleared field as null (the partner should drop it);
    ``member.shared`` leaves out empty fields and is not sent when nothing is left."""
    sent = sorted(fields & grant.fields)
    if type == "member.shared":  # a full record: fields the member left empty are not news
        sent = [f for f in sent if values.get(f) is not None]
        if not sent:
            return None
    body: dict[str, str | None] = {"ref": partner_ref(rt.keys, partner.id, member_id)}
    for f in sent:
        body[f.graphql] = values.get(f)
    return await outbox.enqueue(rt, conn, partner_id=partner.id, member_id=member_id, type=type,
                                member=body, fields=[f.value for f in sent],
                                purpose=grant.purpose, legal_basis=grant.legal_basis.value,
                                key=key)


def _gained(before: Grant | None, after: Grant | None) -> bool:
    return after is not None and (before is None or bool(after.fields - before.fields))


async def push_gains(rt: Runtime, conn: BaseDBAsyncClient, *, member_id: str, key: DataKey,
                     values: dict[PersonalField, str | None], partners: list[PartnerState],
                     before: MemberFacts, after: MemberFacts) -> int:
    """``member.shared`` to each partner whose grant for the member gained fields."""
    sent = 0
    for p in partners:
        new = grant_for(p, after)
        if _gained(grant_for(p, before), new):
            assert new is not None
            if await enqueue_grant(rt, conn, partner=p, member_id=member_id, key=key,
                                   values=values, grant=new, type="member.shared",
                                   fields=new.fields):
                sent += 1
    return sent


def _values_of(view: MemberView) -> dict[PersonalField, str | None]:
    return {f: view.value(f) for f in PersonalField}


# --- subscribers (declared in api/service/composition.py) ---------------------------------------

async def on_profile_changed(rt: Runtime, event: ProfileChanged) -> None:
    """``member.updated`` with the changed granted fields, to every partner granted them."""
    view, change = event.view, event.change
    if not change.changed:
        return
    if view.status != MemberStatus.ACTIVE:
        # A correction: partners that had the member are told by the rights capability
        # (member.correction); the ones it now enters the scope of get the full record.
        corrected = await Member.get_or_none(id=view.id)
        if corrected is not None and corrected.status == MemberStatus.ACTIVE:
            await catch_up_member(rt, view.id)
        return
    # Only partners that could be granted a changed field: most edits (a phone number no
    # partner takes) end here, before the member's consents are read.
    partners = [p for p in await in_force_partners(rt) if receivable(p) & change.changed]
    if not partners:
        return
    member = await Member.get_or_none(id=view.id)
    if member is None:
        return
    facts = (await member_facts([member], partners, rt.now()))[view.id]
    targets = [(p, g) for p in partners if (g := grant_for(p, facts)) and g.fields & change.changed]
    if not targets:
        return
    key = await members.data_key(rt, view.id)
    values = _values_of(view)
    async with in_transaction("default") as conn:
        for p, grant in targets:
            await enqueue_grant(rt, conn, partner=p, member_id=view.id, key=key, values=values,
                                grant=grant, type="member.updated", fields=change.changed)


async def on_consent_changed(rt: Runtime, event: ConsentChanged) -> None:
    """A consent that brings the member into a partner's scope (or adds optional fields)."""
    member_id, purpose = event.member_id, event.purpose
    if event.state != ConsentState.GIVEN:
        return  # losing a grant sends nothing; reads and deliveries stop at once
    concerned = await partners_registry.concerned_by(purpose)
    if not concerned:
        return
    partners = [p for p in await partners_registry.states(rt, partner_ids=concerned)
                if p.in_force and purpose in (p.purpose, p.consent_purpose)]
    if not partners:
        return
    member = await Member.get_or_none(id=member_id)
    if member is None:
        return
    after = (await member_facts([member], partners, rt.now()))[str(member.id)]
    before = MemberFacts(after.member_id, after.status, after.has_purchase,
                         after.consents - {purpose})
    if not any(_gained(grant_for(p, before), grant_for(p, after)) for p in partners):
        return
    view = await members.get_view(rt, member_id)
    key = await members.data_key(rt, member_id)
    async with in_transaction("default") as conn:
        await push_gains(rt, conn, member_id=view.id, key=key, values=_values_of(view),
                         partners=partners, before=before, after=after)


# --- catching up members that entered a scope without an event --------------------------------

async def _never_shared(partner_id: str, member_ids: list[str]) -> set[str]:
    """Members this partner was never sent (nor is about to be sent) a ``member.shared``."""
    if not member_ids:
        return set()
    sent = await OutboxEvent.filter(
        partner_id=partner_id, member_id__in=member_ids, type="member.shared",
        status__in=[OutboxStatus.PENDING, OutboxStatus.DELIVERED]).values_list("member_id",
                                                                               flat=True)
    return set(member_ids) - {str(m) for m in sent}


async def catch_up_member(rt: Runtime, member_id: str) -> int:
    """``member.shared`` to every partner that grants the member now but never had it (a
    restriction lifted, a dormant member back); one transaction."""
    partners = await in_force_partners(rt)
    member = await Member.get_or_none(id=member_id)
    if not partners or member is None:
        return 0
    facts = (await member_facts([member], partners, rt.now()))[member_id]
    targets = [(p, g) for p in partners if (g := grant_for(p, facts))
               and await _never_shared(p.id, [member_id])]
    if not targets:
        return 0
    view = await members.get_view(rt, member_id)
    key = await members.data_key(rt, member_id)
    sent = 0
    async with in_transaction("default") as conn:
        for p, grant in targets:
            if await enqueue_grant(rt, conn, partner=p, member_id=member_id, key=key,
                                   values=_values_of(view), grant=grant, type="member.shared",
                                   fields=grant.fields):
                sent += 1
    return sent


# The next candidates (pull.candidates, in member order after $3) never sent a member.shared
# that is delivered or on its way: the outbox is probed in the database, so a sweep over a
# million members costs the worker a few queries instead of loading every candidate. A consent
# partner's candidates come from the consent events' (purpose, state, member) index.
_UNSENT_CONTRACT = (
    "SELECT m.id AS id FROM members m WHERE m.status = $1 AND m.has_purchase = $2 AND m.id > $3 "
    "AND NOT EXISTS (SELECT 1 FROM outbox_events o WHERE o.member_id = m.id AND "
    "o.partner_id = $4 AND o.type = 'member.shared' AND o.status IN ($5, $6)) "
    "ORDER BY m.id LIMIT $7")
_UNSENT_CONSENT = (
    "SELECT DISTINCT c.member_id AS id FROM consent_events c WHERE c.purpose = $1 AND "
    "c.state = $2 AND c.member_id > $3 "
    "AND NOT EXISTS (SELECT 1 FROM outbox_events o WHERE o.member_id = c.member_id AND "
    "o.partner_id = $4 AND o.type = 'member.shared' AND o.status IN ($5, $6)) "
    "ORDER BY c.member_id LIMIT $7")
_BEFORE_ALL = "00000000-0000-0000-0000-000000000000"  # no member id is the nil UUID


async def _unsent_ids(partner: PartnerState, after: str | None) -> list[str]:
    """The next candidates' ids the partner was never sent a ``member.shared`` (ACTIVE is
    checked on the few returned)."""
    conn = connections.get("default")
    if partner.legal_basis == LegalBasis.CONTRACT:
        sql, first = _UNSENT_CONTRACT, [MemberStatus.ACTIVE.value, True]
    else:
        sql, first = _UNSENT_CONSENT, [partner.purpose, ConsentState.GIVEN.value]
    if conn.capabilities.dialect != "postgres":
        sql = re.sub(r"\$\d", "?", sql)  # each placeholder once, in order
    rows = await conn.execute_query_dict(sql, [
        *first, after or _BEFORE_ALL, partner.id, OutboxStatus.PENDING.value,
        OutboxStatus.DELIVERED.value, _BATCH])
    return [str(row["id"]) for row in rows]


async def _catch_up_partner(rt: Runtime, partner: PartnerState, now: datetime) -> int:
    sent, cursor = 0, None
    while True:
        # Nearly every candidate was sent its record long ago: only the others are read and
        # checked (loading every candidate made a run at a million members a minute of this
        # process's CPU, in the loop that also delivers).
        ids = await _unsent_ids(partner, cursor)
        if not ids:
            return sent
        batch = await Member.filter(id__in=ids, status=MemberStatus.ACTIVE).order_by("id")
        facts = await member_facts(batch, [partner], now)
        granted = {mid: g for mid, f in facts.items() if (g := grant_for(partner, f))}
        values = await granted_values(rt, [m for m in batch if str(m.id) in granted],
                                      {mid: granted[mid].fields for mid in granted})
        if values:
            async with in_transaction("default") as conn:
                for mid, (key, vals) in values.items():
                    if await enqueue_grant(rt, conn, partner=partner, member_id=mid, key=key,
                                           values=vals, grant=granted[mid], type="member.shared",
                                           fields=granted[mid].fields):
                        sent += 1
        if len(ids) < _BATCH:
            return sent
        cursor = ids[-1]


# --- partner changes coming into force ------------------------------------------------------------

async def _shared_since(partner_id: str, member_ids: list[str], since: datetime) -> set[str]:
    """Members already sent (or about to be sent) a ``member.shared`` by this partner since
    ``since``. A member who consents or buys once a change is in force but before this job
    applies it gets the full record from that hook, computed with the change in force: the
    job must not send it a second time."""
    if not member_ids:
        return set()
    sent = await OutboxEvent.filter(
        partner_id=partner_id, member_id__in=member_ids, type="member.shared",
        created_at__gte=since,
        status__in=[OutboxStatus.PENDING, OutboxStatus.DELIVERED]).values_list("member_id",
                                                                               flat=True)
    return {str(m) for m in sent}


async def _push_scope(rt: Runtime, change: PartnerChange, now: datetime) -> int:
    """Enqueue ``member.shared`` for members whose grant gained by ``change`` and who were not
    sent it since the change took effect; mark it applied.

    Members are scanned in id batches; the first batch's transaction claims the change
    (conditional update), so a second runner finds nothing to do.
    """
    pid = str(change.partner_id)
    before_state = await partners_registry.state(rt, pid, change.effective_at
                                                 - timedelta(microseconds=1))
    after_state = await partners_registry.state(rt, pid, now)
    sent, cursor, claimed = 0, None, False
    while True:
        batch = (await candidates(after_state, cursor, _BATCH)) if after_state.in_force else []
        facts = await member_facts(batch, [before_state, after_state], now) if batch else {}
        gains = {mid: g for mid, f in facts.items()
                 if _gained(grant_for(before_state, f), g := grant_for(after_state, f))}
        for mid in await _shared_since(pid, list(gains), change.effective_at):
            del gains[mid]
        values = await granted_values(rt, [m for m in batch if str(m.id) in gains],
                                      {mid: g.fields for mid, g in gains.items() if g})
        async with in_transaction("default") as conn:
            if not claimed:
                marked = await PartnerChange.filter(id=change.id, applied_at=None).using_db(
                    conn).update(applied_at=now)
                if not marked:
                    return 0
                claimed = True
            for mid, (key, vals) in values.items():
                grant = gains[mid]
                assert grant is not None
                if await enqueue_grant(rt, conn, partner=after_state, member_id=mid, key=key,
                                       values=vals, grant=grant, type="member.shared",
                                       fields=grant.fields):
                    sent += 1
        if len(batch) < _BATCH:
            return sent
        cursor = str(batch[-1].id)


async def apply_removal(rt: Runtime, change: PartnerChange) -> int:
    """A narrowing or a retirement (in force at once): claim the change and, in the same
    transaction, send ``member.revoked`` for what is no longer granted. Called right after the
    admin's change commits, and by the job for any change a crash left unclaimed."""
    async with in_transaction("default") as conn:
        if not await PartnerChange.filter(id=change.id, applied_at=None).using_db(conn).update(
                applied_at=rt.now()):
            return 0
        return await revocation.revoke_partner(rt, str(change.partner_id), conn)


async def bring_changes_into_force(rt: Runtime) -> dict[str, int]:
    """Record due changes as applied and push to members they newly bring into scope.

    Reads never wait for this job (fields in force are derived from the change rows); it only
    makes push follow the change. Idempotent: a change is claimed once via ``applied_at``.
    """
    now = rt.now()
    due = await PartnerChange.filter(applied_at=None, effective_at__lte=now).order_by(
        "effective_at")
    applied = events = 0
    for change in due:
        if change.kind in (PartnerChangeKind.ADDED, PartnerChangeKind.FIELDS_WIDENED):
            events += await _push_scope(rt, change, now)
        else:
            events += await apply_removal(rt, change)
        applied += 1
    return {"applied": applied, "events": events}


async def catch_up(rt: Runtime) -> dict[str, int] | str:
    """The safety net behind the after-commit subscribers: every member granted now whose
    partner was never sent a ``member.shared`` gets one (a subscriber that never ran, a
    restriction lifted by an admin, a dormant member back). A full scan, so a long-running
    worker does it at most every ``CATCH_UP_EVERY``; each ``consentry jobs run`` process does
    it once."""
    now = rt.now()
    last = rt.extras.get(_CAUGHT_UP)
    if last is not None and now - last < CATCH_UP_EVERY:
        return "not due"
    sent = 0
    pending = set(await PartnerChange.filter(applied_at=None, effective_at__lte=now).values_list(
        "partner_id", flat=True))
    for partner in await in_force_partners(rt, now):
        if partner.id not in {str(p) for p in pending}:  # partner_changes_in_force pushes those
            sent += await _catch_up_partner(rt, partner, now)
    rt.extras[_CAUGHT_UP] = now
    return {"events": sent}
