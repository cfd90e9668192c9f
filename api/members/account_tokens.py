"""Single-use mailed tokens: random, expiring, stored as SHA-256 only.

An unknown, tampered, expired or used token gets one answer (:data:`INVALID`), so the answer
says nothing about which it was. Using a token is a conditional UPDATE, so two uses at once
cannot both succeed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from api.core.errors import BadInput
from api.models.accounts import AccountToken
from api.platform.runtime import Runtime
from api.security.tokens import hash_token, new_opaque_token

__all__ = ["VERIFY", "RESET", "TTL", "INVALID", "issue", "peek", "use", "retire"]

VERIFY, RESET = "verify", "reset"
TTL = {VERIFY: timedelta(days=7), RESET: timedelta(minutes=30)}
INVALID = "this link is not valid (it may have expired or been used); ask for a new one"


async def issue(rt: Runtime, conn: BaseDBAsyncClient | None, purpose: str, member_id: str,
                email_idx: str | None = None) -> str:
    token = new_opaque_token()
    now = rt.now()
    await AccountToken.create(id=uuid.uuid4(), token_hash=hash_token(token), purpose=purpose,
                              member_id=member_id, email_idx=email_idx, created_at=now,
                              expires_at=now + TTL[purpose], using_db=conn)
    return token


async def peek(rt: Runtime, purpose: str, token: object,
               conn: BaseDBAsyncClient | None = None) -> AccountToken:
    """The token's row while it is usable; BAD_USER_INPUT (:data:`INVALID`) otherwise."""
    if not isinstance(token, str) or not 0 < len(token) <= 256:
        raise BadInput(INVALID, field="token")
    row = await AccountToken.get_or_none(token_hash=hash_token(token.strip()), purpose=purpose,
                                         using_db=conn)
    if row is None or row.used_at is not None or row.expires_at <= rt.now():
        raise BadInput(INVALID, field="token")
    return row


async def use(rt: Runtime, purpose: str, token: object,
              conn: BaseDBAsyncClient | None = None) -> AccountToken:
    """Spend the token once (the first of two concurrent uses wins)."""
    row = await peek(rt, purpose, token, conn)
    spent = await AccountToken.filter(id=row.id, used_at=None).using_db(conn).update(
        used_at=rt.now())
    if not spent:
        raise BadInput(INVALID, field="token")
    return row


async def retire(rt: Runtime, conn: BaseDBAsyncClient | None, purpose: str,
                 member_id: str) -> None:
    """Every unused token of this purpose for the member stops working."""
    await AccountToken.filter(member_id=member_id, purpose=purpose, used_at=None).using_db(
        conn).update(used_at=rt.now())
