"""Email addresses: verified by a mailed token at registration, and changed only once the new
address is verified.

An email change never says whether the new address is taken: the member's ``pendingEmail`` is
set either way and one mail goes to the new address either way, a verification link when it
is free, a notice to its owner when another member uses it (:func:`request_change`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Conflict
from api.core.validation import validate_email
from api.members import account_mail, account_tokens
from api.members import records as members
from api.members.account_tokens import INVALID, VERIFY
from api.members.events import ProfileChanged
from api.members.records import MemberView
from api.models.enums import MemberStatus
from api.models.member import Member
from api.platform import audit, ratelimit
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index

__all__ = ["register", "check_address", "request_change", "verify", "resend"]


async def register(rt: Runtime, *, user_id: str, email: str, full_name: str, password: str,
                   date_of_birth: date | None = None, phone: str | None = None,
                   address: str | None = None) -> MemberView:
    """Register and mail the verification link to the new member's address."""
    view = await members.register(rt, user_id=user_id, email=email, full_name=full_name,
                                  password=password, date_of_birth=date_of_birth, phone=phone,
                                  address=address)
    async with in_transaction("default") as conn:
        token = await account_tokens.issue(rt, conn, VERIFY, view.id,
                                           blind_index(rt.keys, "email", view.email))
        subject, body = account_mail.verify_mail(rt, change=False)
        await account_mail.queue(rt, conn, member_id=view.id, kind=account_mail.VERIFY,
                                 subject=subject, body=body, token=token)
    return view


async def _mail_new_address(rt: Runtime, member_id: str, address: str) -> None:
    """One mail to ``address``: a verification link when it is free, a notice to its owner
    when another member uses it (the requester cannot tell which)."""
    idx = blind_index(rt.keys, "email", address)
    async with in_transaction("default") as conn:
        taken = await Member.filter(email_idx=idx).exclude(id=member_id).exclude(
            status=MemberStatus.WITHDRAWN).using_db(conn).exists()
        if taken:
            subject, body = account_mail.in_use_mail(rt)
            await account_mail.queue(rt, conn, member_id=None, kind=account_mail.EMAIL_IN_USE,
                                     subject=subject, body=body, to=address)
        else:
            token = await account_tokens.issue(rt, conn, VERIFY, member_id, idx)
            subject, body = account_mail.verify_mail(rt, change=True)
            await account_mail.queue(rt, conn, member_id=member_id, kind=account_mail.VERIFY,
                                     subject=subject, body=body, to=address, token=token)


def check_address(new_email: Any) -> str:
    """The new address, cleaned; BAD_USER_INPUT when it is missing or not an address."""
    if new_email is None:
        raise BadInput("email cannot be removed", field="email")
    return validate_email(new_email)


async def request_change(rt: Runtime, member_id: str, new_email: Any) -> None:
    """Set ``pendingEmail`` and mail the new address; the address as it stands is kept until
    the new one is verified. The same address again (in any case) drops a pending change."""
    address = check_address(new_email)
    view = await members.get_view(rt, member_id)
    if blind_index(rt.keys, "email", address) == blind_index(rt.keys, "email", view.email):
        await Member.filter(id=member_id).update(pending_email_ct=None)
        return
    key = await members.data_key(rt, member_id)
    await Member.filter(id=member_id).update(
        pending_email_ct=key.encrypt("pending_email", address))
    await _mail_new_address(rt, member_id, address)
    await audit.record(rt, f"member:{member_id}", "member.email_change_requested", member_id)


async def verify(rt: Runtime, token: Any) -> bool:
    """Use a verification token: the address it was sent to is verified (and, for a pending
    change, becomes the member's address)."""
    async with in_transaction("default") as conn:
        row = await account_tokens.use(rt, VERIFY, token, conn)
        member = await Member.filter(id=row.member_id).using_db(conn).first()
        if member is None or member.status == MemberStatus.WITHDRAWN:
            raise BadInput(INVALID, field="token")
        member_id = str(member.id)
        if row.email_idx == member.email_idx:
            await Member.filter(id=member_id).using_db(conn).update(email_verified_at=rt.now())
            await audit.record(rt, f"member:{member_id}", "member.email_verified", member_id,
                               using=conn)
            return True
        pending = None
        if member.pending_email_ct:
            key = await members.data_key(rt, member_id, conn)
            pending = key.decrypt("pending_email", bytes(member.pending_email_ct))
        if pending is None or blind_index(rt.keys, "email", pending) != row.email_idx:
            raise BadInput(INVALID, field="token")  # superseded by a later change
    try:
        view, change = await members.update_profile(rt, member_id, {"email": pending})
    except Conflict:
        raise Conflict("another member uses this email now") from None
    await Member.filter(id=member_id).update(email_verified_at=rt.now(), pending_email_ct=None)
    await rt.events.publish(rt, ProfileChanged(view, change))
    return True


async def resend(rt: Runtime, member_id: str) -> bool:
    """Mail the verification link again: to the pending address if a change waits, else to the
    member's address unless it is verified already. Rate-limited per member."""
    await ratelimit.hit(rt, "verify-resend", rt.settings.rate_limit_account_mail, member_id)
    member = await Member.get(id=member_id)
    if member.pending_email_ct:
        view = await members.get_view(rt, member_id)
        if view.pending_email:
            await _mail_new_address(rt, member_id, view.pending_email)
        return True
    if member.email_verified_at is not None:
        return True
    async with in_transaction("default") as conn:
        token = await account_tokens.issue(rt, conn, VERIFY, member_id, member.email_idx)
        subject, body = account_mail.verify_mail(rt, change=False)
        await account_mail.queue(rt, conn, member_id=member_id, kind=account_mail.VERIFY,
                                 subject=subject, body=body, token=token)
    return True
