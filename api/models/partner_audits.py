"""The partner loop, member and admin side: objections, partner audits and suspensions.

An objection says: nothing of this member goes to this partner on a consent basis (the grant
rule reads it). An audit is an admin's record of checking a partner (policy 6.2); a FAILED one
suspends all sharing with the partner until a later PASSED or FINDINGS audit, kept as one
``PartnerSuspension`` row so the delivery queue can skip the partner with one small query.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

__all__ = ["PartnerAuditOutcome", "PartnerObjection", "PartnerAudit", "PartnerSuspension"]


class PartnerAuditOutcome(StrEnum):
    PASSED = "PASSED"
    FINDINGS = "FINDINGS"
    FAILED = "FAILED"


class PartnerObjection(Model):
    """One member's objection to one partner (no personal value, only ids and a time)."""

    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(db_index=True)
    partner_id = fields.UUIDField(db_index=True)
    at = fields.DatetimeField()

    class Meta:
        table = "partner_objections"
        unique_together = (("member_id", "partner_id"),)


class PartnerAudit(Model):
    """An audit of a partner; the latest by ``at`` (then ``recorded_at``) is the one in force."""

    id = fields.UUIDField(primary_key=True)
    partner_id = fields.UUIDField(db_index=True)
    at = fields.DatetimeField()
    outcome = fields.CharField(max_length=16)  # PASSED | FINDINGS | FAILED
    notes = fields.TextField(null=True)
    next_due_at = fields.DatetimeField(db_index=True)
    auditor = fields.CharField(max_length=200)
    recorded_at = fields.DatetimeField()
    overdue_mailed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "partner_audits"


class PartnerSuspension(Model):
    """Present while the partner's latest audit FAILED: nothing is shared with it."""

    partner_id = fields.UUIDField(primary_key=True)
    since = fields.DatetimeField()
    audit_id = fields.UUIDField()

    class Meta:
        table = "partner_suspensions"
