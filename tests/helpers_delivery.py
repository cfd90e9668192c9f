"""Test data for delivery: partner rows (config sealed like the registry does, plus an ADDED
change already in force, so the grant re-checked at delivery time allows every field the
adapter accepts) and events queued through the real outbox write side (api.sharing.outbox.enqueue)
for members with a recorded purchase (the basis of the CONTRACT purpose used here)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from api.members.records import data_key
from api.models.enums import PartnerChangeKind, PartnerKind, PersonalField
from api.models.member import Member
from api.models.partner import Partner, PartnerChange
from api.platform.runtime import Runtime
from api.security.sealed import seal
from api.sharing.outbox import enqueue
from api.sharing.refs import partner_ref


async def make_partner(rt: Runtime, name: str, adapter: str, config: dict[str, Any],
                       purpose: str = "order_fulfillment",
                       fields: list[PersonalField] | None = None) -> Partner:
    """A partner in force since yesterday, granted ``fields`` (default: every field)."""
    pid = uuid.uuid4()
    now = rt.now()
    partner = await Partner.create(
        id=pid, name=name, kind=PartnerKind.LOGISTICS, purpose=purpose, adapter=adapter,
        config_ct=seal(rt.keys, f"partner-config/{pid}", json.dumps(config).encode()),
        created_at=now - timedelta(days=31))
    await PartnerChange.create(id=uuid.uuid4(), partner_id=pid, kind=PartnerChangeKind.ADDED,
                               announced_at=now - timedelta(days=31),
                               effective_at=now - timedelta(days=1),
                               fields_=[f.value for f in fields or PersonalField], optional_fields=[],
                               applied_at=now - timedelta(days=1))
    return partner


async def queue(rt: Runtime, partner: Partner, member_id: str | None,
                values: dict[str, str] | None = None, type: str = "member.shared",
                legal_basis: str = "CONTRACT") -> str:
    """One event carrying ``values`` (GraphQL names) for the member; none = erasure-like."""
    values = dict(values or {})
    if member_id:
        await Member.filter(id=member_id).update(has_purchase=True)
    ref = partner_ref(rt.keys, str(partner.id), member_id or "gone")
    key = await data_key(rt, member_id) if values and member_id else None
    fields = [f.value for f in PersonalField if f.graphql in values]
    return await enqueue(rt, None, partner_id=str(partner.id), member_id=member_id, type=type,
                         member={"ref": ref, **values}, fields=fields, purpose=partner.purpose,
                         legal_basis=legal_basis, key=key)
