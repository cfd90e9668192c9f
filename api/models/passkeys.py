"""Member passkeys (WebAuthn credentials) and the challenges of ceremonies in progress."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

__all__ = ["Passkey", "PasskeyChallenge"]


class Passkey(Model):
    """One registered credential. Found at sign-in by the SHA-256 of its credential id (a fixed
    size unique index, whatever the authenticator's id length); the name is member-chosen text,
    so it is sealed under the member's data key like every personal value."""

    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(db_index=True)
    credential_hash = fields.CharField(max_length=64, unique=True)
    credential_id = fields.BinaryField()
    public_key = fields.BinaryField()
    sign_count = fields.BigIntField(default=0)
    transports: fields.JSONField[list[str]] = fields.JSONField(default=list)
    name_ct = fields.BinaryField()
    created_at = fields.DatetimeField()
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "passkeys"


class PasskeyChallenge(Model):
    """A challenge handed out and not yet answered: only its SHA-256 is kept. Finishing deletes
    the row (whoever deletes it owns the challenge), so a challenge answers once."""

    challenge_hash = fields.CharField(max_length=64, primary_key=True)
    purpose = fields.CharField(max_length=8)  # "register" | "login"
    # register: the member; login: the member named by userId (a random id when no member has
    # it, so nothing matches); null for a discoverable sign-in.
    member_id = fields.UUIDField(null=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "passkey_challenges"
