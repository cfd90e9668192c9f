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

Changes that arrive together are written in one transaction, each decided as it would be
alone (``api/consent/group_commit.py``). Each committed change is published as one
:class:`ConsentChanged` event; who reacts is declared in ``api/service/composition.py``.
"""

from __future__ import annotations

import logging
import uuid

from api.consent import group_commit, policy
from api.consent.events import ConsentChanged
from api.consent.purposes import PurposeView, get_purpose
from api.consent.views import ConsentView, view_of_row
from api.core.errors import BadInput, NotFound
from api.members import records as members
from api.members.records import MemberView
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState
from api.models.member import Member
from api.platform import plain_reads
from api.platform.runtime import Runtime
from api.security.envelope import DataKey

__all__ = ["ConsentView", "give", "withdraw", "current", "member_and_current", "how_given"]

log = logging.getLogger("consentry.consent")


async def _consent_purpose(name: str) -> PurposeView:
    purpose = await get_purpose(name)
    if purpose is None:
        raise NotFound("no such purpose; see the purposes query for the list")
    if not purpose.needs_consent:
        raise BadInput(f"purpose {purpose.name} rests on {purpose.legal_basis}, not consent: "
                       "it cannot be given or withdrawn", field="purpose")
    return purpose


def _member_uuid(member_id: str) -> str:
    try:
        return str(uuid.UUID(str(member_id)))
    except ValueError:
        raise NotFound("member not found") from None


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
    view, new = await group_commit.submit(group_commit.Change(
        rt, _member_uuid(member_id), spec, ConsentState.GIVEN, version, client, user_agent))
    if new:
        await _notify(rt, view)
    return view


async def withdraw(rt: Runtime, member_id: str, purpose: str, *, client: str = "",
                   user_agent: str = "") -> ConsentView:
    """Withdraw at once: from the returned event on, every check sees no consent."""
    spec = await _consent_purpose(purpose)
    version = (await policy.in_force(rt)).version
    view, new = await group_commit.submit(group_commit.Change(
        rt, _member_uuid(member_id), spec, ConsentState.WITHDRAWN, version, client,
        user_agent))
    if new:
        await _notify(rt, view)
    return view


async def current(member_id: str) -> list[ConsentView]:
    """The latest event per purpose (one query), ordered by purpose name: ``Member.consents``.

    Consent at a past instant, and for many members at once, is what the grant rule reads:
    :func:`api.sharing.grants.consents_in_force`."""
    # Only the latest row per purpose leaves the database, as values (no model instances): a
    # long history must not make every ``me`` read load all of it (``api/platform/plain_reads.py``).
    found = await plain_reads.fetch(ConsentEvent, _CURRENT, str(uuid.UUID(str(member_id))))
    return [view_of_row(row) for row in found]


async def member_and_current(rt: Runtime, member_id: str) -> tuple[MemberView, list[ConsentView]]:
    """:func:`api.members.records.get_view` and :func:`current` in one statement (``me``)."""
    found = await plain_reads.fetch(Member, _MEMBER_AND_CURRENT, str(member_id))
    view, _ = members.view_from_row(rt, member_id, found[0] if found else None)
    width = members.READ_WIDTH
    return view, [view_of_row(row[width:]) for row in found if row[width] is not None]


# The latest event of each purpose is the one no event of that purpose follows, in (at, id)
# order: no window function and no sort (SQLite walks the (member, purpose, at) index).
_EVENT_COLUMNS = "e.id, e.member_id, e.purpose, e.state, e.policy_version, e.at, e.receipt"
_LATEST = ("NOT EXISTS (SELECT 1 FROM consent_events n WHERE n.member_id = e.member_id "
           "AND n.purpose = e.purpose AND n.at >= e.at AND (n.at > e.at OR n.id > e.id))")
_CURRENT = (f"SELECT {_EVENT_COLUMNS} FROM consent_events e WHERE e.member_id = $1 "  # noqa: S608 (constants)
            f"AND {_LATEST} ORDER BY e.purpose")
_MEMBER_AND_CURRENT = (
    f"SELECT {members.READ_COLUMNS}, {_EVENT_COLUMNS} FROM {members.READ_FROM} "  # noqa: S608
    f"LEFT JOIN consent_events e ON e.member_id = m.id AND {_LATEST} WHERE m.id = $1 "
    "ORDER BY e.purpose")
