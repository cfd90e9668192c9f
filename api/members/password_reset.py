"""Forgotten passwords: a single-use link mailed to a verified address, valid 30 minutes.

``requestPasswordReset`` answers ``true`` whatever the address, so it tells no one whether the
address has an account; it is rate-limited per client address and per address asked for. A
link is mailed only to an address the member verified, or to an imported member who has not
chosen a password yet (the clinic's own record of the address: the reset is how they choose
one). Resetting signs the member out everywhere.
"""

from __future__ import annotations

from typing import Any

from tortoise.transactions import in_transaction

from api.core.errors import BadInput, ConsentryError
from api.core.validation import clean_text, validate_password
from api.members import account_mail, account_tokens, sessions
from api.members import records as members
from api.members.account_tokens import RESET
from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.onboarding import ImportedMember
from api.platform import audit, ratelimit
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index
from api.security.passwords import hash_password

__all__ = ["request", "reset"]


async def request(rt: Runtime, email: Any, client: str) -> bool:
    address = clean_text(email, field="email", max_len=254)
    s = rt.settings
    await ratelimit.hit(rt, "reset-ip", s.rate_limit_account_mail_ip, client)
    await ratelimit.hit(rt, "reset", s.rate_limit_account_mail, address.casefold())
    member = await Member.get_or_none(email_idx=blind_index(rt.keys, "email", address))
    if member is None or member.status == MemberStatus.WITHDRAWN:
        return True
    if member.email_verified_at is None and not await ImportedMember.exists(
            member_id=member.id, password_set_at=None):
        return True
    to = None  # the member's address as stored
    if member.status == MemberStatus.DORMANT:
        to = address  # theirs waits in the vault; this one matched it (case aside)
    async with in_transaction("default") as conn:
        token = await account_tokens.issue(rt, conn, RESET, str(member.id))
        subject, body = account_mail.reset_mail(rt)
        await account_mail.queue(rt, conn, member_id=str(member.id), kind=account_mail.RESET,
                                 subject=subject, body=body, to=to, token=token)
    return True


async def reset(rt: Runtime, token: Any, new_password: Any) -> bool:
    """Set the password, spend every reset token of the member and end all their sessions."""
    row = await account_tokens.peek(rt, RESET, token)
    member_id = str(row.member_id)
    if not await Member.filter(id=member_id).exclude(status=MemberStatus.WITHDRAWN).exists():
        raise BadInput(account_tokens.INVALID, field="token")  # the member left meanwhile
    user_id = email = ""
    try:
        view = await members.get_view(rt, member_id)
        user_id, email = view.user_id, view.email
    except ConsentryError:
        pass  # dormant (identity in the vault): the other rules still apply
    validate_password(new_password, user_id=user_id, email=email)
    password_hash = await hash_password(new_password)
    now = rt.now()
    async with in_transaction("default") as conn:
        await account_tokens.use(rt, RESET, token, conn)
        await account_tokens.retire(rt, conn, RESET, member_id)
        await Member.filter(id=member_id).using_db(conn).update(
            password_hash=password_hash)
        await Member.filter(id=member_id, email_verified_at=None).using_db(conn).update(
            email_verified_at=now)  # the link reached the address
        await ImportedMember.filter(member_id=member_id, password_set_at=None).using_db(
            conn).update(password_set_at=now)
        await sessions.revoke_subject(rt, member_id, conn)
        await audit.record(rt, f"member:{member_id}", "member.password_reset", member_id,
                           using=conn)
    return True
