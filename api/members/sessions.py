"""Token pairs: a short-lived access JWT and an opaque, rotating refresh token.

Each refresh consumes its token and issues a new one in the same family. Presenting a spent
token again means it leaked: the whole family is revoked.

A member's session slides (each new token lasts ``refresh_token_ttl``). An admin's does not: the
first token's expiry, at most ``admin_session_max_seconds`` after the sign-in with password and
code, is carried to every token of the family (and caps its access tokens), so a stolen admin
refresh token never renews ADMIN access past that end without the second factor.

A family is a *session*: its id is the ``sid`` claim of every access token issued in it, so
ending a session (logout, revocation, password change or reset, withdrawal) refuses its access
tokens at once too (``api/members/revocation.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.core.errors import NotFound, Unauthenticated
from api.members import revocation
from api.models.member import RefreshSession
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.tokens import Principal, hash_token, issue_access_token, new_opaque_token

__all__ = ["TokenPair", "SessionView", "start", "rotate", "end", "revoke_subject",
           "access_token_for", "list_sessions", "revoke_session", "revoke_others"]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    role: str
    subject: str


@dataclass(frozen=True)
class SessionView:
    """One live session of a member: started, last refreshed, the device's user agent."""

    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None


def access_token_for(rt: Runtime, principal: Principal, ttl: int | None = None) -> str:
    s = rt.settings
    return issue_access_token(rt.keys, issuer=s.issuer, audience=s.audience, now=rt.now(),
                              ttl=ttl or s.access_token_ttl, principal=principal)


async def _issue(rt: Runtime, role: str, subject: str, family: uuid.UUID,
                 conn: BaseDBAsyncClient | None = None,
                 session_ends: datetime | None = None,
                 user_agent: str | None = None) -> TokenPair:
    """A new pair; the refresh token expires after its TTL or at ``session_ends``, if sooner."""
    refresh = new_opaque_token()
    now = rt.now()
    expires = now + timedelta(seconds=rt.settings.refresh_token_ttl)
    if session_ends is not None:
        expires = min(expires, session_ends)
    await RefreshSession.create(
        id=uuid.uuid4(), token_hash=hash_token(refresh), family_id=family, subject=subject,
        role=role, issued_at=now, expires_at=expires, user_agent=user_agent or None,
        using_db=conn,
    )
    ttl = rt.settings.access_token_ttl
    if session_ends is not None:  # nor does the access token outlive the session
        ttl = max(1, min(ttl, int((session_ends - now).total_seconds())))
    access = access_token_for(rt, Principal(role, subject, sid=str(family)), ttl)
    return TokenPair(access, refresh, ttl, role, subject)


async def start(rt: Runtime, role: str, subject: str, user_agent: str | None = None) -> TokenPair:
    ends = None
    if role == "ADMIN":
        ends = rt.now() + timedelta(seconds=rt.settings.admin_session_max_seconds)
    return await _issue(rt, role, subject, uuid.uuid4(), session_ends=ends,
                        user_agent=user_agent)


async def rotate(rt: Runtime, refresh_token: str) -> TokenPair:
    now = rt.now()
    async with in_transaction("default") as conn:
        row = await (RefreshSession.filter(token_hash=hash_token(refresh_token))
                     .using_db(conn).select_for_update().first())
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise Unauthenticated("refresh token is not valid")
        if row.used_at is not None:
            await RefreshSession.filter(family_id=row.family_id, revoked_at=None).using_db(
                conn).update(revoked_at=now)
            await revocation.record(rt, [str(row.family_id)], conn)
            await audit.record(rt, f"{row.role.lower()}:{row.subject}", "session.reuse_detected",
                               row.subject, {"family": str(row.family_id)}, using=conn)
            reused = True
        else:
            row.used_at = now
            await row.save(using_db=conn, update_fields=["used_at"])
            reused = False
            # An admin family keeps the end set at sign-in (carried by each token's expiry).
            ends = row.expires_at if row.role == "ADMIN" else None
            pair = await _issue(rt, row.role, row.subject, row.family_id, conn, ends,
                                row.user_agent)
    if reused:
        raise Unauthenticated("refresh token was already used; every session of it is revoked")
    return pair


async def end(rt: Runtime, refresh_token: str) -> bool:
    """Logout: revoke the token's whole family (this sign-in on this device)."""
    row = await RefreshSession.get_or_none(token_hash=hash_token(refresh_token))
    if row is None:
        return False
    await _end_families(rt, row.subject, [str(row.family_id)])
    return True


async def _end_families(rt: Runtime, subject: str, families: list[str],
                        conn: BaseDBAsyncClient | None = None) -> None:
    if not families:
        return
    await RefreshSession.filter(subject=subject, family_id__in=families,
                                revoked_at=None).using_db(conn).update(revoked_at=rt.now())
    await revocation.record(rt, families, conn)


async def _live_families(rt: Runtime, subject: str,
                         conn: BaseDBAsyncClient | None = None) -> list[str]:
    """Families not revoked and not expired: each may still have unexpired access tokens out
    there (a family's last access token was issued with its last refresh token, and expires
    long before it)."""
    rows = await RefreshSession.filter(subject=subject, revoked_at=None,
                                       expires_at__gt=rt.now()).using_db(
        conn).values_list("family_id", flat=True)
    return sorted({str(f) for f in rows})


async def revoke_subject(rt: Runtime, subject: str, conn: BaseDBAsyncClient | None = None) -> None:
    """End every session of ``subject`` (withdrawal, password reset, sign out everywhere)."""
    await _end_families(rt, subject, await _live_families(rt, subject, conn), conn)


async def revoke_others(rt: Runtime, subject: str, keep: str,
                        conn: BaseDBAsyncClient | None = None) -> None:
    """End every session of ``subject`` but ``keep`` (a password change keeps its own)."""
    families = [f for f in await _live_families(rt, subject, conn) if f != keep]
    await _end_families(rt, subject, families, conn)


async def revoke_session(rt: Runtime, subject: str, session_id: str) -> None:
    """End one of the caller's own sessions; another's, or an unknown id, is NOT_FOUND."""
    try:
        family = uuid.UUID(session_id)
    except ValueError:
        raise NotFound("no such session") from None
    if not await RefreshSession.exists(subject=subject, family_id=family, revoked_at=None):
        raise NotFound("no such session")
    await _end_families(rt, subject, [str(family)])


async def list_sessions(rt: Runtime, subject: str) -> list[SessionView]:
    """The live sessions of a member, last used first. Last use is the last refresh (access
    tokens are not written down per request)."""
    now = rt.now()
    rows = await RefreshSession.filter(subject=subject, revoked_at=None).order_by("issued_at")
    first: dict[str, datetime] = {}
    latest: dict[str, RefreshSession] = {}
    live: set[str] = set()
    for row in rows:
        family = str(row.family_id)
        first.setdefault(family, row.issued_at)
        latest[family] = row
        if row.used_at is None and row.expires_at > now:
            live.add(family)
    out = [SessionView(f, first[f], latest[f].issued_at, latest[f].user_agent) for f in live]
    return sorted(out, key=lambda v: (v.last_used_at, v.id), reverse=True)
