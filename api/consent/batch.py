"""A batch of consent changes decided: each as it would be alone, in arrival order.

Shared by both ways a batch is written (``api/consent/batch_pg.py`` on the event loop,
``api/consent/batch_sqlite.py`` on SQLite's connection thread): given the batch's members and
the latest event of each (member, purpose) as read under the batch's lock, every change gets
its answer (a new event, the event already in force, or the domain error it alone gets), and
every new event its row, signed receipt and audit entry. Pure computation: no I/O, so it runs
on whichever thread holds the transaction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.consent import receipts
from api.consent.purposes import PurposeView
from api.consent.views import ConsentView, view_of_row
from api.core.errors import Conflict, NotFound
from api.core.ordered_ids import ordered_uuid
from api.models.enums import ConsentState, MemberStatus
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, unwrap

__all__ = ["Change", "Member", "Outcome", "MAX_BATCH", "take", "decide", "read_back",
           "LATEST_COLUMNS"]

MAX_BATCH = 64


@dataclass
class Change:
    """One give or withdrawal to decide; ``member_id`` is a canonical UUID string. Its event
    takes its time, keys and settings from ``rt`` (changes of several runtimes may share a
    batch)."""

    rt: Runtime
    member_id: str
    purpose: PurposeView
    state: ConsentState
    version: str
    client: str = ""
    user_agent: str = ""
    # The answer: the event (new, or the one already in force for a retry) and whether it is new.
    done: asyncio.Future[tuple[ConsentView, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


Outcome = tuple[ConsentView, bool] | BaseException


@dataclass
class Member:
    status: str
    wrapped: bytes
    kek_version: int
    key: DataKey | None = None


def take(pending: deque[Change]) -> list[Change]:
    """The next batch, oldest first. Only the one drainer takes (the event loop appends), so
    the length read here can only grow before the pops."""
    return [pending.popleft() for _ in range(min(MAX_BATCH, len(pending)))]


def decide(batch: Sequence[Change], members: Mapping[str, Member],
           latest: dict[tuple[str, str], ConsentView]
           ) -> tuple[list[Outcome], list[dict[str, object]], list[audit.Entry]]:
    """Each change's answer, and the rows and audit entries of the new events. ``latest`` is
    updated as changes record, so a change sees the ones before it. A data key that cannot be
    opened raises: the batch fails as a whole and its changes are tried alone."""
    outcomes: list[Outcome] = []
    rows: list[dict[str, object]] = []
    entries: list[audit.Entry] = []
    for change in batch:
        member = members.get(change.member_id)
        if member is None or member.status == MemberStatus.WITHDRAWN.value:
            outcomes.append(NotFound("member not found"))
            continue
        pair = (change.member_id, change.purpose.name)
        before = latest.get(pair)
        if change.state == ConsentState.GIVEN:
            if (before is not None and before.state == ConsentState.GIVEN
                    and before.policy_version == change.version):
                outcomes.append((before, False))
                continue
        elif before is None:
            outcomes.append(Conflict(
                f"there is no consent to {change.purpose.name} to withdraw"))
            continue
        elif before.state == ConsentState.WITHDRAWN:
            outcomes.append((before, False))
            continue
        if member.key is None:
            member.key = unwrap(change.rt.keys, member.wrapped, member.kek_version,
                                change.member_id)
        view, row, entry = _event(member.key, change)
        latest[pair] = view
        rows.append(row)
        entries.append(entry)
        outcomes.append((view, True))
    return outcomes, rows, entries


# What both batch reads select, in this order: the member's status and wrapped key, then its
# latest event for the pair (null columns when it has none) in ConsentView's order.
LATEST_COLUMNS = ('m."status", k."wrapped", k."kek_version", e."id", p."member_id", '
                  'p."purpose", e."state", e."policy_version", e."at", e."receipt"')


def read_back(found: Sequence[Any]) -> tuple[dict[str, Member],
                                             dict[tuple[str, str], ConsentView]]:
    """The members and latest events of a batch's read (rows of :data:`LATEST_COLUMNS`)."""
    members = {str(r["member_id"]): Member(r["status"], r["wrapped"], r["kek_version"])
               for r in found}
    latest = {(str(r["member_id"]), r["purpose"]): view_of_row(r[3:])
              for r in found if r["id"] is not None}
    return members, latest


def _event(key: DataKey, change: Change) -> tuple[ConsentView, dict[str, object], audit.Entry]:
    """The event row, its signed receipt and its audit entry (ids and names only)."""
    rt = change.rt
    event_id = str(ordered_uuid())
    now = rt.now()
    member_id, purpose = change.member_id, change.purpose
    receipt = receipts.issue(rt.keys, receipt_id=event_id, member_id=member_id,
                             issuer=rt.settings.issuer, controller=rt.settings.controller,
                             purpose=purpose.name, legal_basis=purpose.legal_basis,
                             policy_version=change.version, state=change.state, at=now)
    row: dict[str, object] = {
        "id": event_id, "member_id": member_id, "purpose": purpose.name, "state": change.state,
        "policy_version": change.version, "at": now,
        "client_ct": key.encrypt(f"consent/{event_id}/client", change.client[:120]),
        "user_agent_ct": key.encrypt(f"consent/{event_id}/user_agent", change.user_agent[:255]),
        "receipt": receipt}
    action = "consent.give" if change.state == ConsentState.GIVEN else "consent.withdraw"
    entry = audit.Entry(now, f"member:{member_id}", action, member_id,
                        {"purpose": purpose.name, "policyVersion": change.version,
                         "event": event_id})
    return (ConsentView(event_id, member_id, purpose.name, change.state, change.version, now,
                        receipt), row, entry)
