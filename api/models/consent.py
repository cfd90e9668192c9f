"""Purposes, policy versions, consent events (append-only) and cookie choices."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from api.models.enums import ConsentState, LegalBasis


class Purpose(Model):
    name = fields.CharField(max_length=80, primary_key=True)
    description = fields.TextField()
    legal_basis = fields.CharEnumField(LegalBasis, max_length=24)
    required = fields.BooleanField(default=False)
    partner_id = fields.UUIDField(null=True)

    class Meta:
        table = "purposes"


class PolicyVersion(Model):
    """A policy version: the one in force is the latest whose ``effective_at`` has passed."""

    version = fields.CharField(max_length=40, primary_key=True)
    text = fields.TextField()
    announced_at = fields.DatetimeField()
    effective_at = fields.DatetimeField(db_index=True)
    in_force_recorded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "policy_versions"


class ConsentEvent(Model):
    """One give or withdraw. Never updated: the current state is the latest event per purpose."""

    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField()
    purpose = fields.CharField(max_length=80)
    state = fields.CharEnumField(ConsentState, max_length=16)
    policy_version = fields.CharField(max_length=40)
    at = fields.DatetimeField()
    # How it was given (client address, user agent): personal data, so encrypted under the
    # member data key like every other personal value.
    client_ct = fields.BinaryField(null=True)
    user_agent_ct = fields.BinaryField(null=True)
    receipt = fields.TextField()

    class Meta:
        table = "consent_events"
        # The second: members who ever gave a purpose (a consent partner's candidates,
        # api/sharing/pull.py), without reading every member's events.
        indexes = (("member_id", "purpose", "at"), ("purpose", "state", "member_id"))


class CookieChoice(Model):
    """A device cookie choice at one time (append-only: the latest is in force)."""

    id = fields.UUIDField(primary_key=True)
    device_id = fields.CharField(max_length=128, db_index=True)
    member_id = fields.UUIDField(null=True, db_index=True)
    analytics = fields.BooleanField()
    personalization = fields.BooleanField()
    marketing = fields.BooleanField()
    at = fields.DatetimeField()

    class Meta:
        table = "cookie_choices"
