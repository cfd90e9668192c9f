"""Sign-in for members and admins, and password changes. Admins need a valid, unused TOTP code as
well; a DORMANT member signing in gets their data back from the vault first
(``api/members/dormancy.py``). Member user ids are matched without regard to case
(``api/members/user_ids.py``)."""

from __future__ import annotations

import uuid

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Conflict, Unauthenticated
from api.core.validation import clean_text, validate_email, validate_password, validate_user_id
from api.members import dormancy, sessions, throttle, user_ids
from api.members import records as members
from api.members.sessions import TokenPair
from api.models.enums import MemberStatus
from api.models.member import Admin, Member
from api.platform import audit, ratelimit
from api.platform.runtime import Runtime
from api.security import totp
from api.security.passwords import DUMMY_HASH, hash_password, verify_password
from api.security.sealed import open_sealed, seal

__all__ = ["login", "create_admin", "change_password"]


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
    password_hash = await hash_password(password)
    try:
        await Admin.create(id=admin_id, user_id=user_id, email=email,
                           password_hash=password_hash,
                           totp_secret_ct=_seal_secret(rt, secret, str(admin_id)),
                           created_at=rt.now())
    except IntegrityError:
        raise Conflict("an admin with this user id exists") from None
    await audit.record(rt, "cli", "admin.create", f"admin:{admin_id}")
    return totp.provisioning_uri(secret, user_id)


async def _admin_login(rt: Runtime, admin: Admin, password: str, otp: str | None,
                       key: str, user_agent: str | None) -> TokenPair:
    if not await verify_password(admin.password_hash, password):
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
    return await sessions.start(rt, "ADMIN", str(admin.id), user_agent)


async def login(rt: Runtime, user_id: str, password: str, otp: str | None = None,
                user_agent: str | None = None) -> TokenPair:
    user_id = clean_text(user_id, field="userId", max_len=64)
    if not isinstance(password, str) or len(password) > 1024:
        raise BadInput("password is too long", field="password")
    key = throttle.throttle_key(rt, user_id.casefold())  # Alice and alice: one account
    await throttle.attempt(rt, key)  # counted before any secret is checked; reset on success
    admin = await Admin.get_or_none(user_id=user_id)
    if admin is not None:
        return await _admin_login(rt, admin, password, otp, key, user_agent)
    member = await user_ids.find(rt, user_id)
    if member is None or member.status == MemberStatus.WITHDRAWN:
        await verify_password(DUMMY_HASH, password)  # same cost whether or not the account exists
        raise Unauthenticated("user id or password is wrong")
    if not await verify_password(member.password_hash, password):
        raise Unauthenticated("user id or password is wrong")
    await throttle.reset(key)
    await Member.filter(id=member.id).update(last_active_at=rt.now())
    await user_ids.fold_on_sign_in(rt, member, user_id)
    if member.status == MemberStatus.DORMANT:
        await dormancy.reactivate(rt, str(member.id))
    return await sessions.start(rt, "MEMBER", str(member.id), user_agent)


async def change_password(rt: Runtime, member_id: str, session_id: str, current: object,
                          new: object) -> bool:
    """Needs the current password (rate-limited per member, as sign-in is per account); ends
    every session of the member but the one asking."""
    await ratelimit.hit(rt, "password-change", rt.settings.rate_limit_login, member_id)
    if not isinstance(current, str) or len(current) > 1024:
        raise BadInput("currentPassword is too long", field="currentPassword")
    member = await Member.get(id=member_id)
    if not await verify_password(member.password_hash, current):
        raise BadInput("currentPassword is not your password", field="currentPassword")
    if not isinstance(new, str):
        raise BadInput("password must be 12 to 128 characters", field="password")
    view = await members.get_view(rt, member_id)
    validate_password(new, user_id=view.user_id, email=view.email)
    password_hash = await hash_password(new)
    async with in_transaction("default") as conn:
        await Member.filter(id=member_id).using_db(conn).update(password_hash=password_hash)
        await sessions.revoke_others(rt, member_id, session_id, conn)
        await audit.record(rt, f"member:{member_id}", "member.password_change", member_id,
                           using=conn)
    return True
