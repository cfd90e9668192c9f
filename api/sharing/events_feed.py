"""``partnerEvents``: the pull twin of push delivery.

A partner reads its own outbox rows, oldest first (ids are time-ordered, so id order is the
order they were written), with the same ids its push adapter receives. Whatever the event's
push status: a pull-only partner (adapter ``pull``, ``pushes = False``) has its events held
for this list, a push partner may read it to reconcile.

Every read is minimized like a delivery (``api/sharing/bridge.py``): a value-carrying event
shows only the fields granted to the partner for the member now (none left: the event is left
out, as the bridge would dead-letter it; a destroyed member's payloads are gone); value-less
events (``member.erasure``, ``member.revoked``, ``member.restricted``) show the ref and the
fields concerned. The fields with a value each page hands out are recorded in the ledger
(channel ``pull``), in one insert. Cursors are sealed to the partner and to this list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from api.models.enums import LegalBasis, PersonalField
from api.models.member import MemberKey
from api.models.partner import OutboxEvent, Partner
from api.platform.runtime import Runtime
from api.security.envelope import unwrap
from api.sharing import audits, ledger
from api.sharing.bridge import granted_fields
from api.sharing.outbox import VALUELESS, payload_label
from api.sharing.pull import open_cursor, seal_cursor

__all__ = ["FeedEvent", "FeedPage", "partner_events", "SCOPE"]

SCOPE = "partner-events"
_BY_GRAPHQL = {f.graphql: f for f in PersonalField}


@dataclass(frozen=True)
class FeedEvent:
    id: str
    type: str
    at: datetime
    ref: str
    values: dict[PersonalField, str | None]  # granted fields carried (none for value-less)
    fields: list[PersonalField]
    cursor: str


@dataclass(frozen=True)
class FeedPage:
    events: list[FeedEvent]
    has_next: bool
    end_cursor: str | None


async def partner_events(rt: Runtime, partner_id: str, first: int,
                         after: str | None) -> FeedPage:
    await audits.ensure_not_suspended(partner_id)  # FORBIDDEN after a failed audit
    after_id = open_cursor(rt, partner_id, after, SCOPE) if after else None
    query = OutboxEvent.filter(partner_id=partner_id)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = await query.order_by("id").limit(first + 1).values(
        "id", "member_id", "type", "payload_ct", "payload_plain", "created_at")
    has_next = len(rows) > first
    rows = rows[:first]
    if not rows:
        return FeedPage([], False, None)
    now = rt.now()
    carrying = sorted({str(r["member_id"]) for r in rows
                       if r["type"] not in VALUELESS and r["member_id"] and r["payload_ct"]})
    grants = await granted_fields(rt, partner_id, carrying, now) if carrying else {}
    keys = {str(k.member_id): k for k in await MemberKey.filter(member_id__in=carrying)}
    name = (await Partner.filter(id=partner_id).values_list("name", flat=True))[0]
    out: list[FeedEvent] = []
    disclosed: list[ledger.Entry] = []
    for r in rows:
        plain = r["payload_plain"] or {}
        event_id, cursor = str(r["id"]), seal_cursor(rt, partner_id, str(r["id"]), SCOPE)
        if r["type"] in VALUELESS:
            out.append(FeedEvent(event_id, r["type"], r["created_at"], plain.get("ref", ""), {},
                                 [PersonalField(f) for f in plain.get("fields", [])], cursor))
            continue
        mid = str(r["member_id"]) if r["member_id"] else None
        granted = grants.get(mid) if mid else None
        row_key = keys.get(mid) if mid else None
        if mid is None or granted is None or row_key is None or not r["payload_ct"]:
            continue
        key = unwrap(rt.keys, bytes(row_key.wrapped), row_key.kek_version, mid)
        member = json.loads(key.decrypt(payload_label(event_id), bytes(r["payload_ct"])))
        values = {_BY_GRAPHQL[k]: v for k, v in member.items() if k != "ref" and k in granted}
        if not values:
            continue
        fields = sorted(values, key=list(PersonalField).index)
        out.append(FeedEvent(event_id, r["type"], r["created_at"], member["ref"], values,
                             fields, cursor))
        given = sorted(f.value for f, v in values.items() if v is not None)
        if given:
            disclosed.append(ledger.Entry(mid, partner_id, str(name), given, plain.get("purpose", ""),
                                          LegalBasis(plain.get("legalBasis", "CONTRACT")),
                                          "pull", now))
    await ledger.write(None, disclosed)
    return FeedPage(out, has_next, seal_cursor(rt, partner_id, str(rows[-1]["id"]), SCOPE))
