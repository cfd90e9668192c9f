"""The transactional outbox for partner events: write side.

Call :func:`enqueue` inside the same transaction as the change that caused the event. The
member part of the payload is encrypted under the member's data key (so destroying the
member destroys undelivered payloads too); non-personal metadata needed to record the
disclosure after delivery (field names, purpose, legal basis) is kept in ``payload_plain``.
Delivery (the read side: claims, retries, dead letters) is ``api/sharing/queue.py``.

Event shape delivered to adapters (contract README, "Sharing rules"; v2 "Partner loop"):
``{"id", "type", "partner", "at", "member": {"ref", <granted fields by GraphQL name>}, "fields"}``

Ids are time-ordered (UUIDv7 layout), so a partner's events read in id order are in the order
they were written: ``partnerEvents`` pages by id. ``payload_plain["fields"]`` always names the
fields the event concerns: the values it carries, or for the value-less events (erasure,
revocation, restriction) the fields to delete or stop using. A deletion event also writes
its deletion duty (``api/sharing/duties.py``) in the same transaction.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from api.core.ordered_ids import ordered_uuid
from api.models.enums import OutboxStatus, PersonalField
from api.models.partner import OutboxEvent
from api.models.partner_loop import DeletionDuty
from api.platform.jobs import notify_worker
from api.platform.runtime import Runtime
from api.security.envelope import DataKey

__all__ = ["enqueue", "EVENT_TYPES", "VALUELESS", "DELETION", "payload_label"]

EVENT_TYPES = ("member.shared", "member.updated", "member.correction", "member.erasure",
               "member.revoked", "member.restricted")
# Events holding only the ref and field names; the bridge delivers them without a grant.
VALUELESS = frozenset({"member.erasure", "member.revoked", "member.restricted"})
# Events that oblige the partner to delete ``fields``: each one writes a deletion duty.
DELETION = frozenset({"member.erasure", "member.revoked"})


def payload_label(event_id: str) -> str:
    """The AES-GCM binding label of an event's member payload."""
    return f"outbox/{event_id}"


async def enqueue(rt: Runtime, conn: BaseDBAsyncClient | None, *, partner_id: str,
                  member_id: str | None, type: str, member: dict[str, Any],
                  fields: list[str], purpose: str, legal_basis: str,
                  key: DataKey | None) -> str:
    """Queue one event. ``member`` is ``{"ref": ..., "fullName": ...}`` (GraphQL names);
    ``fields`` are the PersonalField values it discloses, or, for a value-less event (only
    ``ref`` in ``member``), the fields it concerns.

    Writers minimize before calling: ``fields`` lie within what the partner is granted now
    (the grant rule already leaves out what its adapter cannot take). The payload must hold
    exactly ``fields``, so what is stored is what the ledger records; anything else is refused
    (fail closed). The delivery-time re-check is a second guard, not the first.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type}")
    event_id = ordered_uuid()
    personal = {k: v for k, v in member.items() if k != "ref"}
    if type in VALUELESS:
        if personal:
            raise ValueError(f"a {type} event carries no personal value")
        fields = sorted({PersonalField(f).value for f in fields})
    elif set(personal) != {PersonalField(f).graphql for f in fields}:
        raise ValueError("an event's member payload must hold exactly the fields it declares")
    if personal and key is None:
        raise ValueError("an event holding personal fields needs the member's data key")
    now = rt.now()
    await OutboxEvent.create(
        id=event_id, partner_id=partner_id, member_id=member_id, type=type,
        payload_ct=key.encrypt(payload_label(str(event_id)), json.dumps(member)) if personal
        and key else None,
        payload_plain={"ref": member["ref"], "fields": fields, "purpose": purpose,
                       "legalBasis": legal_basis},
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now,
        using_db=conn,
    )
    if type in DELETION:
        await DeletionDuty.create(
            event_id=event_id, partner_id=partner_id, member_id=member_id, kind=type,
            fields_=fields, created_at=now,
            due_at=now + timedelta(days=rt.settings.deletion_due_days), using_db=conn)
    await notify_worker(rt, conn)  # the worker delivers at once, not at its next poll
    return str(event_id)
