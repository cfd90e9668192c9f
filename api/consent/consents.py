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

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent import policy, receipts
from api.consent.events import ConsentChanged
from api.consent.purposes import PurposeView, get_purpose
from api.core.errors import BadInput, Conflict, NotFound
from api.core.ordered_ids import ordered_uuid
from api.members import plain_reads
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, MemberStatus
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, unwrap

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


_EVENT_FIELDS = ConsentEvent._meta.fields_map
# The member's status and wrapped data key; no row: no such member, or its key is destroyed.
_MEMBER = ('SELECT m."status", k."wrapped", k."kek_version" FROM "members" m '
           'JOIN "member_keys" k ON k."member_id" = m."id" WHERE m."id" = $1 FOR UPDATE OF m')
_LATEST = ('SELECT "id", "state", "policy_version", "at", "receipt" FROM "consent_events" '
           'WHERE "member_id" = $1 AND "purpose" = $2 ORDER BY "at" DESC, "id" DESC LIMIT 1')
# SQLite runs one write transaction at a time, so the member and its latest event for the
# purpose come in one statement. PostgreSQL must read the latest event in a statement that
# starts after the member's row lock is granted: one statement's snapshot predates its lock
# and would miss the event a concurrent change committed meanwhile.
_MEMBER_AND_LATEST = (
    'SELECT m."status", k."wrapped", k."kek_version", e."id", e."state", e."policy_version", '
    'e."at", e."receipt" FROM "members" m JOIN "member_keys" k ON k."member_id" = m."id" '
    'LEFT JOIN "consent_events" e ON e."id" = (SELECT l."id" FROM "consent_events" l '
    'WHERE l."member_id" = m."id" AND l."purpose" = ? ORDER BY l."at" DESC, l."id" DESC '
    'LIMIT 1) WHERE m."id" = ?')


@dataclass(frozen=True)
class _Current:
    key: DataKey
    latest: ConsentView | None


def _member_uuid(member_id: str) -> str:
    try:
        return str(uuid.UUID(str(member_id)))
    except ValueError:
        raise NotFound("member not found") from None


async def _current(rt: Runtime, conn: BaseDBAsyncClient, member_id: str,
                   purpose: str) -> _Current:
    """Lock the member (one member's changes are serialised) and read its data key and its
    latest event for ``purpose``, in ``conn``'s transaction."""
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(_MEMBER, [member_id])
        if rows:
            rows[0].update((await conn.execute_query_dict(_LATEST, [member_id, purpose])
                            or [{"id": None}])[0])
    else:
        rows = await conn.execute_query_dict(_MEMBER_AND_LATEST, [purpose, member_id])
    if not rows or rows[0]["status"] == MemberStatus.WITHDRAWN.value:
        raise NotFound("member not found")
    r = rows[0]
    key = unwrap(rt.keys, r["wrapped"], r["kek_version"], member_id)
    if r["id"] is None:
        return _Current(key, None)
    return _Current(key, ConsentView(
        str(r["id"]), member_id, purpose, ConsentState(r["state"]), r["policy_version"],
        _EVENT_FIELDS["at"].to_python_value(r["at"]), r["receipt"]))


async def _append(rt: Runtime, conn: BaseDBAsyncClient, member_id: str, key: DataKey,
                  purpose: PurposeView, state: ConsentState, version: str, client: str,
                  user_agent: str) -> ConsentView:
    """The event, its signed receipt and its audit entry: one statement on PostgreSQL."""
    event_id = str(ordered_uuid())
    now = rt.now()
    receipt = receipts.issue(rt.keys, receipt_id=event_id, member_id=member_id,
                             issuer=rt.settings.issuer, controller=rt.settings.controller,
                             purpose=purpose.name, legal_basis=purpose.legal_basis,
                             policy_version=version, state=state, at=now)
    values = {"id": event_id, "member_id": member_id, "purpose": purpose.name,
              "state": state, "policy_version": version, "at": now,
              "client_ct": key.encrypt(f"consent/{event_id}/client", client[:120]),
              "user_agent_ct": key.encrypt(f"consent/{event_id}/user_agent", user_agent[:255]),
              "receipt": receipt}
    action = "consent.give" if state == ConsentState.GIVEN else "consent.withdraw"
    await audit.record_insert(rt, conn, ConsentEvent, values, f"member:{member_id}", action,
                              member_id, {"purpose": purpose.name, "policyVersion": version,
                                          "event": event_id})
    return ConsentView(event_id, member_id, purpose.name, state, version, now, receipt)


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
    member_id = _member_uuid(member_id)
    async with in_transaction("default") as conn:
        now = await _current(rt, conn, member_id, spec.name)
        latest = now.latest
        if (latest is not None and latest.state == ConsentState.GIVEN
                and latest.policy_version == version):
            return latest
        view = await _append(rt, conn, member_id, now.key, spec, ConsentState.GIVEN, version,
                             client, user_agent)
    await _notify(rt, view)
    return view


async def withdraw(rt: Runtime, member_id: str, purpose: str, *, client: str = "",
                   user_agent: str = "") -> ConsentView:
    """Withdraw at once: from the returned event on, every check sees no consent."""
    spec = await _consent_purpose(purpose)
    version = (await policy.in_force(rt)).version
    member_id = _member_uuid(member_id)
    async with in_transaction("default") as conn:
        now = await _current(rt, conn, member_id, spec.name)
        latest = now.latest
        if latest is None:
            raise Conflict(f"there is no consent to {spec.name} to withdraw")
        if latest.state == ConsentState.WITHDRAWN:
            return latest
        view = await _append(rt, conn, member_id, now.key, spec, ConsentState.WITHDRAWN,
                             version, client, user_agent)
    await _notify(rt, view)
    return view


async def current(member_id: str) -> list[ConsentView]:
    """The latest event per purpose (one query), ordered by purpose name: ``Member.consents``.

    Consent at a past instant, and for many members at once, is what the grant rule reads:
    :func:`api.sharing.grants.consents_in_force`."""
    # Only the latest row per purpose leaves the database, as values (no model instances): a
    # long history must not make every ``me`` read load all of it (``api/members/plain_reads.py``).
    found = await plain_reads.fetch(ConsentEvent, _LATEST_SQL, str(uuid.UUID(str(member_id))))
    return [ConsentView(str(id_), str(member), purpose, ConsentState(state), version,
                        plain_reads.as_datetime(at), receipt)
            for id_, member, purpose, state, version, at, receipt in found]


# The latest event of each purpose is the one no event of that purpose follows, in (at, id)
# order: no window function and no sort (SQLite walks the (member, purpose, at) index).
_LATEST_SQL = (
    "SELECT e.id, e.member_id, e.purpose, e.state, e.policy_version, e.at, e.receipt "
    "FROM consent_events e WHERE e.member_id = $1 AND NOT EXISTS (SELECT 1 FROM "
    "consent_events n WHERE n.member_id = $1 AND n.purpose = e.purpose AND n.at >= e.at "
    "AND (n.at > e.at OR n.id > e.id)) ORDER BY e.purpose")
