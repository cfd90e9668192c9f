"""The partner loop: deletion duties created by ``member.erasure`` and ``member.revoked`` events.

A duty says: this partner must delete these fields of this member by ``due_at``. It is keyed
by the outbox event that told the partner (one event, one partner, one member), so a partner
confirms by event id whichever way the event reached it (push or ``partnerEvents``).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

__all__ = ["DeletionDuty"]


class DeletionDuty(Model):
    """One partner's duty to delete what one event lists. ``member_id`` is None for erasures
    (the member no longer exists); ``fields_`` are PersonalField values, never values."""

    event_id = fields.UUIDField(primary_key=True)
    partner_id = fields.UUIDField(db_index=True)
    member_id = fields.UUIDField(null=True, db_index=True)
    kind = fields.CharField(max_length=40)  # the event type: member.erasure | member.revoked
    fields_: fields.JSONField[list[str]] = fields.JSONField(source_field="fields", default=list)
    created_at = fields.DatetimeField()
    due_at = fields.DatetimeField(db_index=True)
    confirmed_at = fields.DatetimeField(null=True)
    confirmed_by = fields.CharField(max_length=16, null=True)  # partner | adapter | admin
    overdue_mailed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deletion_duties"
