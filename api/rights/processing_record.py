"""The record of processing activities (GDPR Art. 30), derived from what runs now.

Nothing here is written by hand per deployment: the controller comes from the settings, the
purposes and their legal bases from the purposes registry, the recipients from the partner
registry (in force and announced, with the fields and basis the grant rule uses), the retention
periods from the constants the jobs apply, the policy from the versions table. Only the data
categories of the built-in purposes and the security measures are fixed lists here, and each
names what the code does (the measures: ``api/security``, ``api/platform/audit.py``).

Every change to the record is an audit entry ``processing_record.changed`` naming the sections
that changed (and a digest of each, no content): :func:`note_changes` compares the record with
the one the audit trail last recorded. The partner mutations call it at once; the
``processing_record`` job catches the rest (a policy announced, a change coming into force);
reading ``processingRecord`` calls it too, so the record served is always the one last audited.
The JSON shape is documented in ``docs/processing-record.md``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from api.consent import policy, purposes
from api.members import dormancy
from api.models.audit import AuditEntry
from api.models.consent import PolicyVersion
from api.models.enums import LegalBasis, PartnerChangeKind, PartnerStatus, PersonalField
from api.platform import audit
from api.platform.runtime import Runtime
from api.rights import erasure
from api.sharing import audits, registry

__all__ = ["FORMAT", "SECURITY_MEASURES", "CHANGED", "build", "note_changes", "job"]

FORMAT = "consentry.processing-record/1"
CHANGED = "processing_record.changed"
_JOB_ACTOR = "job:processing_record"
_PROFILE = [f.graphql for f in PersonalField]

# What each built-in purpose processes (partner purposes: the fields their partners receive).
_CATEGORIES: dict[str, list[str]] = {
    "membership": [*_PROFILE, "credentials", "sessions", "consent history", "data requests"],
    "order_fulfillment": ["fullName", "address", "purchase records"],
    "marketing": ["email", "fullName"],
    "personalization": ["consent history", "purchase records"],
    "health_data": ["health information (special category, Art. 9 GDPR)"],
    "research": ["age band", "region", "member since (year)", "purchase count",
                 "consented purposes"],
}

SECURITY_MEASURES: list[str] = [
    "Envelope encryption of every personal field: AES-256-GCM under a per-member data key, "
    "wrapped by a rotating key-encryption key; ciphertexts bound to member and field",
    "Crypto-shredding on erasure: the member's data key is destroyed, with a shred log for "
    "restores",
    "Keyed blind indexes (HMAC-SHA-256) for look-ups: no user id or email stored in plaintext",
    "Hash-chained, append-only audit trail of administrative and data-subject actions",
    "Passwords hashed with argon2id; sign-in and withdrawal attempts rate-limited",
    "Administrators sign in with a password and a single-use TOTP code",
    "Partner access by OAuth client credentials with scopes; adapter configuration sealed "
    "under the key-encryption key",
    "Consent and destruction receipts signed with Ed25519 (verifiable with the published JWKS)",
    "Tax-retained data kept in a separate vault store under its own key until its deadline",
    "Partner audits: a failed audit suspends all sharing with the partner",
]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _names(fields: frozenset[PersonalField]) -> list[str]:
    return [f.graphql for f in PersonalField if f in fields]


async def _recipients(rt: Runtime) -> list[dict[str, Any]]:
    now = rt.now()
    states = [s for s in await registry.states(rt, now) if s.status != PartnerStatus.RETIRED]
    pending = await registry.upcoming(rt, [s.id for s in states])
    suspended = await audits.suspended_ids()
    out = []
    for s in states:
        out.append({
            "id": s.id, "name": s.name, "kind": s.kind.value, "status": s.status.value,
            "purpose": s.purpose, "legalBasis": s.legal_basis.value,
            "fields": _names(s.fields),
            "optionalFields": _names(s.optional_fields),
            "optionalFieldsBasis": LegalBasis.CONSENT.value,
            "suspended": s.id in suspended,
            "upcoming": [{"kind": PartnerChangeKind(c.kind).value,
                          "effectiveAt": c.effective_at.isoformat(),
                          "fields": _names(frozenset(PersonalField(f) for f in c.fields_)),
                          "optionalFields": _names(frozenset(
                              PersonalField(f) for f in c.optional_fields))}
                         for c in pending[s.id]],
        })
    return out


async def _purposes(rt: Runtime, recipients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_purpose: dict[str, set[str]] = {}
    for r in recipients:
        by_purpose.setdefault(r["purpose"], set()).update(r["fields"], r["optionalFields"])
        by_purpose.setdefault(f"partner:{r['id']}", set()).update(r["optionalFields"])
    out = []
    for p in await purposes.list_purposes(rt):
        categories = list(_CATEGORIES.get(p.name, []))
        categories += sorted(by_purpose.get(p.name, set()) - set(categories))
        out.append({"name": p.name, "description": p.description,
                    "legalBasis": p.legal_basis.value, "required": p.required,
                    "partnerId": p.partner_id, "dataCategories": categories})
    return out


async def build(rt: Runtime) -> dict[str, Any]:
    """The record as served by ``processingRecord`` (shape: docs/processing-record.md)."""
    now = rt.now()
    recipients = await _recipients(rt)
    current = await policy.in_force(rt, now)
    announced = await PolicyVersion.filter(effective_at__gt=now).order_by("effective_at")
    s = rt.settings
    return {
        "format": FORMAT,
        "generatedAt": now.isoformat(),
        "controller": {"name": s.controller, "publicUrl": s.public_url},
        "policy": {"version": current.version, "effectiveAt": current.effective_at.isoformat(),
                   "announced": [{"version": p.version, "effectiveAt": p.effective_at.isoformat()}
                                 for p in announced]},
        "dataSubjects": ["members (registered patients and customers of the controller)"],
        "purposes": await _purposes(rt, recipients),
        "recipients": recipients,
        "retention": {
            "taxVaultYears": erasure.TAX_YEARS,
            "taxVaultFields": [f.graphql for f in erasure.TAX_FIELDS],
            "dormancyMonths": dormancy.DORMANT_MONTHS,
            "dormantRetentionDays": s.dormant_retention_days,
            "partnerDeletionDays": s.deletion_due_days,
        },
        "securityMeasures": list(SECURITY_MEASURES),
    }


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _sections(record: dict[str, Any]) -> dict[str, str]:
    return {k: _digest(v) for k, v in record.items() if k not in ("generatedAt",)}


async def note_changes(rt: Runtime, actor: str,
                       record: dict[str, Any] | None = None) -> list[str]:
    """Audit the record if it differs from the last audited one; the sections that changed."""
    sections = _sections(record if record is not None else await build(rt))
    last = await AuditEntry.filter(action=CHANGED).order_by("-seq").first()
    before: dict[str, str] = dict((last.detail or {}).get("sections", {})) if last else {}
    changed = sorted(k for k in sections.keys() | before.keys()
                     if sections.get(k) != before.get(k))
    if changed:
        await audit.record(rt, actor, CHANGED, FORMAT, {"changed": changed,
                                                        "sections": sections})
    return changed


async def job(rt: Runtime) -> dict[str, int]:
    """The ``processing_record`` job: audit what changed since the last entry."""
    return {"changed": len(await note_changes(rt, _JOB_ACTOR))}
