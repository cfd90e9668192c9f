"""Account lifecycle: single-use mailed tokens, the secrets a queued mail carries, and ended
sessions (for refusing their access tokens at once on every process)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

__all__ = ["AccountToken", "MailSecret", "RevokedSession"]


class AccountToken(Model):
    """A mailed token (email verification or password reset). Only its SHA-256 is stored:
    ``email_idx`` is the blind index of the address a verification token confirms."""

    id = fields.UUIDField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    purpose = fields.CharField(max_length=16)  # verify | reset
    member_id = fields.UUIDField(db_index=True)
    email_idx = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "account_tokens"


class MailSecret(Model):
    """The token a queued mail carries, sealed under the KEK and bound to the notification:
    deleted once the mail is sent or given up (the notification body holds a placeholder)."""

    notification_id = fields.UUIDField(primary_key=True)
    secret_ct = fields.BinaryField()

    class Meta:
        table = "mail_secrets"


class RevokedSession(Model):
    """An ended session (a refresh-token family). Processes read new rows by ``seq``, and rows older
    than an access token's lifetime are pruned (no token of the session can still be valid)."""

    seq = fields.BigIntField(primary_key=True, generated=True)
    session_id = fields.CharField(max_length=36, db_index=True)
    revoked_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "revoked_sessions"
