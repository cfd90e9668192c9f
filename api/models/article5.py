"""Article 5: legal-process disclosures (four eyes) and the research datasets' metadata.

A research dataset's rows are never stored: only what was asked and how much was released.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from api.models.enums import LegalBasis

__all__ = ["LegalDisclosureStatus", "ResearchAttribute", "LegalDisclosure", "ResearchDataset"]


class LegalDisclosureStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"


class ResearchAttribute(StrEnum):
    AGE_BAND = "AGE_BAND"
    REGION = "REGION"
    MEMBER_SINCE_YEAR = "MEMBER_SINCE_YEAR"
    PURCHASE_COUNT = "PURCHASE_COUNT"
    CONSENTED_PURPOSES = "CONSENTED_PURPOSES"


class LegalDisclosure(Model):
    """A request from an authority for one member's data: requested by one admin, decided by
    another, released once. ``authority``, ``reference`` and ``justification`` describe the
    order, not the member (the member is linked by id only)."""

    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(db_index=True)
    authority = fields.CharField(max_length=120)
    reference = fields.CharField(max_length=200)
    legal_basis = fields.CharEnumField(LegalBasis, max_length=24)
    fields_: fields.JSONField[list[str]] = fields.JSONField(source_field="fields", default=list)
    justification = fields.TextField()
    notify_member = fields.BooleanField()
    status = fields.CharEnumField(LegalDisclosureStatus, max_length=16, db_index=True)
    requested_by = fields.CharField(max_length=64)  # admin id
    requested_by_name = fields.CharField(max_length=64)  # admin user id, as shown
    decided_by = fields.CharField(max_length=64, null=True)
    decided_by_name = fields.CharField(max_length=64, null=True)
    decision_note = fields.TextField(null=True)
    requested_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)
    released_at = fields.DatetimeField(null=True)
    # Only while the member is not told: when the admins are next reminded to review that.
    review_due_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "legal_disclosures"


class ResearchDataset(Model):
    """One dataset handed out: parameters and counts, never the rows."""

    id = fields.UUIDField(primary_key=True)
    created_at = fields.DatetimeField()
    created_by = fields.CharField(max_length=64)
    k = fields.IntField()
    attributes: fields.JSONField[list[str]] = fields.JSONField(default=list)
    rows = fields.IntField()
    suppressed = fields.IntField()

    class Meta:
        table = "research_datasets"
