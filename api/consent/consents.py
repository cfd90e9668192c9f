"""Consent (Art. 1, 8): given against the policy version in force, withdrawn with one call.

Event-sourced: every give and withdraw appends a :class:`ConsentEvent` (who, purpose, state,
policy version, time, client address and user agent, signed receipt) and nothing is ever
updated; the state at any instant is the latest event at or before it. Event ids are
time-ordered (UUIDv7 layout, monotonic in the process) so two events in the same instant (a
withdrawal right after a give under a frozen test clock) still have a definite order.

Choices made (documented in the README):

- an unknown purpose is ``NOT_FOUND``; a purpose that does not rest on consent (``membership``,
  ``order_fulfillment``) cannot be given or withdrawn: ``BAD_USER_INPUT``;
- giving against any version but the one in force is ``BAD_USER_INPUT`` naming that version;
- giving again while already given under the version in force, or withdrawing again while
  already withdrawn, changes nothing and returns the existing event (safe retries);
- withdrawing a consent never given is ``CONFLICT``.

Each committed change is published as one :class:`ConsentChanged` event; who reacts is
declared in ``api/service/composition.py``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent import policy, receipts
from api.consent.events import ConsentChanged
from api.consent.purposes import PurposeView, get_purpose
from api.core.errors import BadInput, Conflict, NotFound
from api.core.ordered_ids import ordered_uuid
from api.members import records as members
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, MemberStatus
from api.models.member import Member
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.envelope import DataKey

__all__ = ["ConsentView", "give", "withdraw", "current", "how_given"]

log = logging.getLogger("consentry.consent")


@dataclass(frozen=True)
class ConsentView:
    id: str
    member_id: str
    purpose: str
    state: ConsentState
    policy_version: str
    at: datetime
    receipt: str


def _view(row: ConsentEvent) -> ConsentView:
    return ConsentView(str(row.id), str(row.member_id), row.purpose, ConsentState(row.state),
                       row.policy_version, row.at, row.receipt)


async def _consent_purpose(name: str) -> PurposeView:
    purpose = await get_purpose(name)
    if purpose is None:
        raise NotFound("no such purpose; see the purposes query for the list")
    if not purpose.needs_consent:
        raise BadInput(f"purpose {purpose.name} rests on {purpose.legal_basis}, not consent: "
                       "it cannot be given or withdrawn", field="purpose")
    return purpose


async def _lock_member(conn: BaseDBAsyncClient, member_id: str) -> None:
    """Serialise consent changes of one member (row lock on PostgreSQL; SQLite serialises)."""
    member = await Member.filter(id=member_id).using_db(conn).select_for_update().first()
    if member is None or member.status == MemberStatus.WITHDRAWN:
        raise NotFound("member not found")


async def _latest(member_id: str, purpose: str,
                  conn: BaseDBAsyncClient | None = None) -> ConsentEvent | None:
    query = ConsentEvent.filter(member_id=member_id, purpose=purpose)
    return await query.using_db(conn).order_by("-at", "-id").first()


async def _append(rt: Runtime, conn: BaseDBAsyncClient, member_id: str, purpose: PurposeView,
                  state: ConsentState, version: str, client: str,
                  user_agent: str) -> ConsentEvent:
    event_id = ordered_uuid()
    now = rt.now()
    receipt = receipts.issue(rt.keys, receipt_id=str(event_id), member_id=member_id,
                             issuer=rt.settings.issuer, controller=rt.settings.controller,
                             purpose=purpose.name, legal_basis=purpose.legal_basis,
                             policy_version=version, state=state, at=now)
    key = await members.data_key(rt, member_id, conn)
    row = await ConsentEvent.create(id=event_id, member_id=member_id, purpose=purpose.name,
                                    state=state, policy_version=version, at=now,
                                    client_ct=key.encrypt(f"consent/{event_id}/client",
                                                          client[:120]),
                                    user_agent_ct=key.encrypt(f"consent/{event_id}/user_agent",
                                                              user_agent[:255]),
                                    receipt=receipt, using_db=conn)
    action = "consent.give" if state == ConsentState.GIVEN else "consent.withdraw"
    await audit.record(rt, f"member:{member_id}", action, str(member_id),
                       {"purpose": purpose.name, "policyVersion": version,
                        "event": str(event_id)}, using=conn)
    return row


def how_given(key: DataKey, row: ConsentEvent) -> tuple[str, str]:
    """The client address and user agent an event was recorded from (decrypted)."""
    return (key.decrypt_optional(f"consent/{row.id}/client", row.client_ct) or "",
            key.decrypt_optional(f"consent/{row.id}/user_agent", row.user_agent_ct) or "")


async def _notify(rt: Runtime, view: ConsentView) -> None:
    await rt.events.publish(rt, ConsentChanged(view.id, view.member_id, view.purpose, view.state))


async def give(rt: Runtime, member_id: str, purpose: str, policy_version: str, *,
               client: str = "", user_agent: str = "") -> ConsentView:
    """Give consent to a CONSENT-basis purpose against the policy version in force."""
    spec = await _consent_purpose(purpose)
    version = (await policy.in_force(rt)).version
    if policy_version != version:
        raise BadInput(f"consent must be given against the policy version in force, {version}",
                       field="policyVersion", policyVersionInForce=version)
    async with in_transaction("default") as conn:
        await _lock_member(conn, member_id)
        latest = await _latest(member_id, spec.name, conn=conn)
        if (latest is not None and latest.state == ConsentState.GIVEN
                and latest.policy_version == version):
            return _view(latest)
        row = await _append(rt, conn, member_id, spec, ConsentState.GIVEN, version, client,
                            user_agent)
    view = _view(row)
    await _notify(rt, view)
    return view


async def withdraw(rt: Runtime, member_id: str, purpose: str, *, client: str = "",
                   user_agent: str = "") -> ConsentView:
    """Withdraw at once: from the returned event on, every check sees no consent."""
    spec = await _consent_purpose(purpose)
    version = (await policy.in_force(rt)).version
    async with in_transaction("default") as conn:
        await _lock_member(conn, member_id)
        latest = await _latest(member_id, spec.name, conn=conn)
        if latest is None:
            raise Conflict(f"there is no consent to {spec.name} to withdraw")
        if latest.state == ConsentState.WITHDRAWN:
            return _view(latest)
        row = await _append(rt, conn, member_id, spec, ConsentState.WITHDRAWN, version, client,
                            user_agent)
    view = _view(row)
    await _notify(rt, view)
    return view


async def current(member_id: str) -> list[ConsentView]:
    """The latest event per purpose (one query), ordered by purpose name: ``Member.consents``.

    Consent at a past instant, and for many members at once, is what the grant rule reads:
    :func:`api.sharing.grants.consents_in_force`."""
    # Only the latest row per purpose leaves the database: a long history of gives and
    # withdrawals must not make every ``me`` read load (and build a model for) all of it.
    # raw() takes no parameters: the id is inlined only as a parsed, canonical UUID.
    rows = cast(list[ConsentEvent],
                await ConsentEvent.raw(_LATEST_SQL.format(id=uuid.UUID(str(member_id)))))
    return [_view(row) for row in rows]


_LATEST_SQL = (
    "SELECT id, member_id, purpose, state, policy_version, at, receipt, client_ct, "
    "user_agent_ct FROM (SELECT *, row_number() OVER (PARTITION BY purpose "
    "ORDER BY at DESC, id DESC) AS rn FROM consent_events WHERE member_id = '{id}') AS latest "
    "WHERE rn = 1 ORDER BY purpose")
