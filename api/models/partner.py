"""Outsourcing partners, their announced changes, credentials, purchases, outbox and disclosures."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from api.models.enums import LegalBasis, OutboxStatus, PartnerChangeKind, PartnerKind


class Partner(Model):
    """A partner. Its fields in force at an instant are derived from ``PartnerChange`` rows."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=120, unique=True)
    kind = fields.CharEnumField(PartnerKind, max_length=16)
    purpose = fields.CharField(max_length=80)
    adapter = fields.CharField(max_length=80)
    config_ct = fields.BinaryField(null=True)  # adapter config, AES-GCM under the KEK
    created_at = fields.DatetimeField()
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "partners"


class PartnerChange(Model):
    """An announced change. Widening ones take effect 30 days after announcement at the soonest."""

    id = fields.UUIDField(primary_key=True)
    partner_id = fields.UUIDField(db_index=True)
    kind = fields.CharEnumField(PartnerChangeKind, max_length=24)
    announced_at = fields.DatetimeField()
    effective_at = fields.DatetimeField(db_index=True)
    fields_: fields.JSONField[list[str]] = fields.JSONField(source_field="fields", default=list)
    optional_fields: fields.JSONField[list[str]] = fields.JSONField(default=list)
    applied_at = fields.DatetimeField(null=True)  # when a job recorded it in force

    class Meta:
        table = "partner_changes"


class PartnerCredential(Model):
    client_id = fields.CharField(max_length=64, primary_key=True)
    partner_id = fields.UUIDField(db_index=True)
    secret_hash = fields.CharField(max_length=255)
    scopes: fields.JSONField[list[str]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "partner_credentials"


class Purchase(Model):
    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(db_index=True)
    amount = fields.CharField(max_length=32)
    currency = fields.CharField(max_length=3)
    reference_ct = fields.BinaryField()  # may identify the member: encrypted under the data key
    at = fields.DatetimeField()

    class Meta:
        table = "purchases"


class OutboxEvent(Model):
    """A partner event written in the same transaction as the change that caused it.

    ``payload_ct`` is encrypted under the member data key, so destroying the member also
    destroys undelivered payloads: erasure events carry only the partner-specific ref.
    """

    id = fields.UUIDField(primary_key=True)
    partner_id = fields.UUIDField(db_index=True)
    member_id = fields.UUIDField(null=True, db_index=True)
    type = fields.CharField(max_length=40)
    payload_ct = fields.BinaryField(null=True)
    # only for events holding no personal value
    payload_plain: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    status = fields.CharEnumField(OutboxStatus, max_length=16, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField()
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_events"
        indexes = (("status", "next_attempt_at"),)


class DeliveryAttempt(Model):
    id = fields.UUIDField(primary_key=True)
    event_id = fields.UUIDField(db_index=True)
    at = fields.DatetimeField()
    ok = fields.BooleanField()
    error = fields.CharField(max_length=255, null=True)
    duration_ms = fields.IntField(default=0)

    class Meta:
        table = "delivery_attempts"


class Disclosure(Model):
    """The ledger: every event delivered and every pull that returned a member data."""

    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField()
    partner_id = fields.UUIDField()
    partner_name = fields.CharField(max_length=120)
    fields_: fields.JSONField[list[str]] = fields.JSONField(source_field="fields", default=list)
    purpose = fields.CharField(max_length=80)
    legal_basis = fields.CharEnumField(LegalBasis, max_length=24)
    channel = fields.CharField(max_length=8)  # push | pull
    at = fields.DatetimeField()

    class Meta:
        table = "disclosures"
        indexes = (("member_id", "partner_id"),)
