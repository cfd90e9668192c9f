"""Test data for delivery: partner rows (config sealed like the registry does) and events
queued through the real outbox write side (api.outbox.enqueue)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from api.members import data_key
from api.models.enums import PartnerKind, PersonalField
from api.models.partner import Partner
from api.outbox import enqueue
from api.partner_refs import partner_ref
from api.runtime import Runtime
from api.security.sealed import seal


async def make_partner(rt: Runtime, name: str, adapter: str, config: dict[str, Any],
                       purpose: str = "order_fulfillment") -> Partner:
    pid = uuid.uuid4()
    return await Partner.create(
        id=pid, name=name, kind=PartnerKind.LOGISTICS, purpose=purpose, adapter=adapter,
        config_ct=seal(rt.keys, f"partner-config/{pid}", json.dumps(config).encode()),
        created_at=rt.now())


async def queue(rt: Runtime, partner: Partner, member_id: str | None,
                values: dict[str, str] | None = None, type: str = "member.shared",
                legal_basis: str = "CONTRACT") -> str:
    """One event carrying ``values`` (GraphQL names) for the member; none = erasure-like."""
    values = dict(values or {})
    ref = partner_ref(rt.keys, str(partner.id), member_id or "gone")
    key = await data_key(rt, member_id) if values and member_id else None
    fields = [f.value for f in PersonalField if f.graphql in values]
    return await enqueue(rt, None, partner_id=str(partner.id), member_id=member_id, type=type,
                         member={"ref": ref, **values}, fields=fields, purpose=partner.purpose,
                         legal_basis=legal_basis, key=key)
