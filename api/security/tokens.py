"""Access tokens: short-lived EdDSA JWTs with every claim required and one pinned algorithm.

Refresh tokens are opaque random strings; only their SHA-256 is stored (see ``api.members.sessions``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from api.core.errors import Unauthenticated
from api.security.keys import KeyRing

__all__ = ["Principal", "issue_access_token", "decode_access_token", "new_opaque_token",
           "hash_token"]

ALGORITHM = "EdDSA"
REQUIRED = ["iss", "aud", "exp", "iat", "sub", "role", "jti"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a member, an admin or a partner (with its scopes)."""

    role: str  # MEMBER | ADMIN | PARTNER
    subject: str  # member id, admin id or partner id
    scopes: tuple[str, ...] = ()
    client_id: str | None = None
    jti: str = ""
    sid: str = ""  # the session (refresh-token family) a member or admin token belongs to


def issue_access_token(keys: KeyRing, *, issuer: str, audience: str, now: datetime,
                       ttl: int, principal: Principal) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "sub": principal.subject,
        "role": principal.role,
        "jti": uuid.uuid4().hex,
    }
    if principal.role == "PARTNER":
        claims["scope"] = " ".join(principal.scopes)
        claims["client_id"] = principal.client_id
    if principal.sid:
        claims["sid"] = principal.sid
    return jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM, headers={"kid": keys.kid})


def decode_access_token(keys: KeyRing, token: str, *, issuer: str, audience: str,
                        now: datetime) -> Principal:
    """Verify signature, algorithm, issuer, audience and times against the injected clock."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("kid") != keys.kid:
            raise Unauthenticated("invalid token")
        claims = jwt.decode(
            token,
            keys.public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require": REQUIRED, "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid token") from exc
    times = [claims["exp"], claims["iat"], claims.get("nbf", claims["iat"])]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times) or not (
            isinstance(claims["sub"], str) and isinstance(claims["jti"], str)):
        raise Unauthenticated("invalid token")  # a forged claim type must not become INTERNAL
    ts = now.timestamp()
    if claims["exp"] <= ts:
        raise Unauthenticated("token expired")
    if claims.get("nbf", claims["iat"]) > ts + 30:
        raise Unauthenticated("token not yet valid")
    role = claims["role"]
    if role not in ("MEMBER", "ADMIN", "PARTNER"):
        raise Unauthenticated("invalid token")
    scopes = tuple(str(claims.get("scope", "")).split()) if role == "PARTNER" else ()
    sid = claims.get("sid", "")
    if not isinstance(sid, str):
        raise Unauthenticated("invalid token")
    return Principal(role, str(claims["sub"]), scopes, claims.get("client_id"), claims["jti"],
                     sid)


def new_opaque_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
