"""The transactional outbox for partner events: write side.

Call :func:`enqueue` inside the same transaction as the change that caused the event. The
member part of the payload is encrypted under the member's data key (so destroying the
member destroys undelivered payloads too); non-personal metadata needed to record the
disclosure after delivery (field names, purpose, legal basis) is kept in ``payload_plain``.
Delivery (the read side: claims, retries, dead letters) is ``api/sharing/queue.py``.

Event shape delivered to adapters (contract README, "Sharing rules"):
``{"id", "type", "partner", "at", "member": {"ref", <granted fields by GraphQL name>}}``
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from api.models.enums import OutboxStatus, PersonalField
from api.models.partner import OutboxEvent
from api.platform.runtime import Runtime
from api.security.envelope import DataKey

__all__ = ["enqueue", "EVENT_TYPES", "payload_label"]

EVENT_TYPES = ("member.shared", "member.updated", "member.correction", "member.erasure")


def payload_label(event_id: str) -> str:
    """The AES-GCM binding label of an event's member payload."""
    return f"outbox/{event_id}"


async def enqueue(rt: Runtime, conn: BaseDBAsyncClient | None, *, partner_id: str,
                  member_id: str | None, type: str, member: dict[str, Any],
                  fields: list[str], purpose: str, legal_basis: str,
                  key: DataKey | None) -> str:
    """Queue one event. ``member`` is ``{"ref": ..., "fullName": ...}`` (GraphQL names);
    ``fields`` are the PersonalField values it discloses (empty for erasure notices).

    Writers minimize before calling: ``fields`` lie within what the partner is granted now
    (the grant rule already leaves out what its adapter cannot take). The payload must hold
    exactly ``fields``, so what is stored is what the ledger records; anything else is refused
    (fail closed). The delivery-time re-check is a second guard, not the first.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type}")
    event_id = uuid.uuid4()
    personal = {k: v for k, v in member.items() if k != "ref"}
    if set(personal) != {PersonalField(f).graphql for f in fields}:
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
    return str(event_id)
