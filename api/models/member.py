"""Members, their data keys, admins, refresh-token sessions and sign-in throttling."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from api.models.enums import MemberStatus


class Member(Model):
    """A member. Personal fields are AES-GCM ciphertexts under the member data key."""

    id = fields.UUIDField(primary_key=True)
    status = fields.CharEnumField(MemberStatus, max_length=16, default=MemberStatus.ACTIVE,
                                  db_index=True)
    created_at = fields.DatetimeField()
    last_active_at = fields.DatetimeField(db_index=True)
    password_hash = fields.CharField(max_length=255)
    user_id_idx = fields.CharField(max_length=64, unique=True)
    email_idx = fields.CharField(max_length=64, unique=True)
    user_id_ct = fields.BinaryField()
    email_ct = fields.BinaryField()
    full_name_ct = fields.BinaryField()
    date_of_birth_ct = fields.BinaryField(null=True)
    phone_ct = fields.BinaryField(null=True)
    address_ct = fields.BinaryField(null=True)
    has_purchase = fields.BooleanField(default=False)
    dormancy_notified_at = fields.DatetimeField(null=True)
    dormant_since = fields.DatetimeField(null=True)
    withdrawn_at = fields.DatetimeField(null=True)
    # Accounts (api/members/verification.py): when the address was confirmed, an address
    # change waiting for confirmation (under the member key), and whether ``user_id_idx`` is
    # the index of the case-folded user id (False: a row written before ids folded case).
    email_verified_at = fields.DatetimeField(null=True)
    pending_email_ct = fields.BinaryField(null=True)
    user_id_folded = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "members"


class MemberKey(Model):
    """A member wrapped data key. Deleting this row crypto-shreds the member."""

    member_id = fields.UUIDField(primary_key=True)
    wrapped = fields.BinaryField()
    kek_version = fields.IntField()

    class Meta:
        table = "member_keys"


class Admin(Model):
    """Staff. Signs in with password and TOTP: the TOTP secret is stored encrypted under the KEK."""

    id = fields.UUIDField(primary_key=True)
    user_id = fields.CharField(max_length=64, unique=True)
    email = fields.CharField(max_length=254)
    password_hash = fields.CharField(max_length=255)
    totp_secret_ct = fields.BinaryField()
    totp_last_step = fields.BigIntField(default=0)
    created_at = fields.DatetimeField()

    class Meta:
        table = "admins"


class RefreshSession(Model):
    """One refresh token (hashed). Tokens of one sign-in share a family: reuse revokes it."""

    id = fields.UUIDField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    family_id = fields.UUIDField(db_index=True)
    subject = fields.CharField(max_length=64, db_index=True)
    role = fields.CharField(max_length=16)
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    user_agent = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "refresh_sessions"


class LoginThrottle(Model):
    """Failed sign-ins per account key (a blind index, so unknown accounts are throttled too)."""

    key = fields.CharField(max_length=64, primary_key=True)
    failures = fields.IntField(default=0)
    window_start = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "login_throttle"
