"""Access and portability (Art. 7): everything held about a member as one JSON document.

The format is versioned (``consentry.export/v1``) and documented in docs/export-format.md. Each
export is itself recorded as a PORTABILITY request, completed at once, so it appears in the
document it produces and in the admin's request list.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from tortoise.transactions import in_transaction

from api.consent.consents import how_given
from api.members import passkeys
from api.members import records as members
from api.models.consent import ConsentEvent, CookieChoice
from api.models.enums import DataRequestKind
from api.models.partner import Purchase
from api.models.rights import DataRequest, Notification
from api.platform.runtime import Runtime
from api.rights import requests as rights
from api.sharing import ledger as disclosures
from api.sharing.purchases import decrypt_reference

__all__ = ["FORMAT", "export"]

FORMAT = "consentry.export/v1"


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


async def export(rt: Runtime, member_id: str) -> dict[str, Any]:
    """``{"format", "generated_at", "data"}``; ``data`` is the document itself."""
    view = await members.get_view(rt, member_id)
    key = await members.data_key(rt, member_id)
    async with in_transaction("default") as conn:
        await rights.open_request(rt, conn, member_id=member_id,
                                  kind=DataRequestKind.PORTABILITY, completed=True)
    now = rt.now()
    consents = await ConsentEvent.filter(member_id=member_id).order_by("at", "id")
    cookies = await CookieChoice.filter(member_id=member_id).order_by("at", "id")
    purchases = await Purchase.filter(member_id=member_id).order_by("at", "id")
    requests = await DataRequest.filter(member_id=member_id).order_by("received_at", "id")
    notes = await Notification.filter(member_id=member_id).order_by("created_at", "id")
    data = {
        "format": FORMAT,
        "generatedAt": now.isoformat(),
        "controller": rt.settings.controller,
        "member": {
            "id": view.id, **view.personal(), "status": view.status.value,
            "createdAt": _iso(view.created_at), "lastActiveAt": _iso(view.last_active_at),
        },
        "consents": [{"id": str(c.id), "purpose": c.purpose, "state": c.state.value,
                      "policyVersion": c.policy_version, "at": _iso(c.at), "receipt": c.receipt,
                      **dict(zip(("client", "userAgent"), how_given(key, c), strict=True))}
                     for c in consents],
        "cookieChoices": [{"deviceId": c.device_id, "necessary": True, "analytics": c.analytics,
                           "personalization": c.personalization, "marketing": c.marketing,
                           "at": _iso(c.at)} for c in cookies],
        "purchases": [{"id": str(p.id), "amount": p.amount, "currency": p.currency,
                       "reference": decrypt_reference(key, p), "at": _iso(p.at)}
                      for p in purchases],
        "disclosures": [{"partner": d.partner, "fields": list(d.fields), "purpose": d.purpose,
                         "legalBasis": d.legal_basis.value, "channel": d.channel,
                         "at": _iso(d.at)} for d in await disclosures.for_member(member_id)],
        "dataRequests": [{"id": str(r.id), "kind": r.kind.value, "status": r.status.value,
                          "fields": list(r.fields_ or []), "receivedAt": _iso(r.received_at),
                          "dueAt": _iso(r.due_at), "resolvedAt": _iso(r.resolved_at),
                          "notes": rights.read_notes(key, r)} for r in requests],
        "passkeys": [{"id": k.id, "name": k.name, "createdAt": _iso(k.created_at),
                      "lastUsedAt": _iso(k.last_used_at)}
                     for k in await passkeys.list_for(rt, member_id)],
        "notifications": [{"id": str(n.id), "kind": n.kind, "subject": n.subject,
                           "body": n.body, "status": n.status, "createdAt": _iso(n.created_at),
                           "sentAt": _iso(n.sent_at)} for n in notes],
    }
    return {"format": FORMAT, "generated_at": now, "data": data}
