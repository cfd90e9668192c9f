"""Sign-in for members and admins. Admins need a valid, unused TOTP code as well; a DORMANT
member signing in gets their data back from the vault first (``api/members/dormancy.py``)."""

from __future__ import annotations

import uuid

from tortoise.exceptions import IntegrityError

from api.core.errors import BadInput, Conflict, Unauthenticated
from api.core.validation import clean_text, validate_email, validate_password, validate_user_id
from api.members import dormancy, sessions, throttle
from api.members.sessions import TokenPair
from api.models.enums import MemberStatus
from api.models.member import Admin, Member
from api.platform import audit
from api.platform.runtime import Runtime
from api.security import totp
from api.security.blind_index import blind_index
from api.security.passwords import DUMMY_HASH, hash_password, verify_password
from api.security.sealed import open_sealed, seal

__all__ = ["login", "create_admin"]



def _seal_secret(rt: Runtime, secret: str, admin_id: str) -> bytes:
    return seal(rt.keys, f"totp/{admin_id}", secret.encode())


def _open_secret(rt: Runtime, blob: bytes, admin_id: str) -> str:
    return open_sealed(rt.keys, f"totp/{admin_id}", blob).decode()


async def create_admin(rt: Runtime, *, user_id: str, email: str, password: str) -> str:
    """Create an admin and return its TOTP provisioning URI (shown once)."""
    user_id = validate_user_id(user_id)
    email = validate_email(email)
    validate_password(password, user_id=user_id, email=email)
    admin_id = uuid.uuid4()
    secret = totp.new_secret()
    try:
        await Admin.create(id=admin_id, user_id=user_id, email=email,
                           password_hash=hash_password(password),
                           totp_secret_ct=_seal_secret(rt, secret, str(admin_id)),
                           created_at=rt.now())
    except IntegrityError:
        raise Conflict("an admin with this user id exists") from None
    await audit.record(rt, "cli", "admin.create", f"admin:{admin_id}")
    return totp.provisioning_uri(secret, user_id)


async def _admin_login(rt: Runtime, admin: Admin, password: str, otp: str | None,
                       key: str) -> TokenPair:
    if not verify_password(admin.password_hash, password):
        raise Unauthenticated("user id or password is wrong")
    if not otp:
        raise Unauthenticated("a one-time password is required", otpRequired=True)
    step = totp.verify_code(_open_secret(rt, admin.totp_secret_ct, str(admin.id)), otp, rt.now())
    if step is None or step <= admin.totp_last_step:
        raise Unauthenticated("one-time password is wrong or already used")
    updated = await Admin.filter(id=admin.id, totp_last_step__lt=step).update(totp_last_step=step)
    if not updated:
        raise Unauthenticated("one-time password is wrong or already used")
    await throttle.reset(key)
    await audit.record(rt, f"admin:{admin.id}", "admin.login", f"admin:{admin.id}")
    return await sessions.start(rt, "ADMIN", str(admin.id))


async def login(rt: Runtime, user_id: str, password: str, otp: str | None = None) -> TokenPair:
    user_id = clean_text(user_id, field="userId", max_len=64)
    if not isinstance(password, str) or len(password) > 1024:
        raise BadInput("password is too long", field="password")
    key = throttle.throttle_key(rt, user_id)
    await throttle.attempt(rt, key)  # counted before any secret is checked; reset on success
    admin = await Admin.get_or_none(user_id=user_id)
    if admin is not None:
        return await _admin_login(rt, admin, password, otp, key)
    member = await Member.get_or_none(user_id_idx=blind_index(rt.keys, "user_id", user_id))
    if member is None or member.status == MemberStatus.WITHDRAWN:
        verify_password(DUMMY_HASH, password)  # same cost whether or not the account exists
        raise Unauthenticated("user id or password is wrong")
    if not verify_password(member.password_hash, password):
        raise Unauthenticated("user id or password is wrong")
    await throttle.reset(key)
    await Member.filter(id=member.id).update(last_active_at=rt.now())
    if member.status == MemberStatus.DORMANT:
        await dormancy.reactivate(rt, str(member.id))
    return await sessions.start(rt, "MEMBER", str(member.id))
