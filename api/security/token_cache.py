"""Verified access tokens, cached by their full string: the EdDSA check is most of a small request.

Access tokens are signed statements that do not change, so a token that verified once verifies
again under the same key; only time changes the answer, and the times are checked on every
call, with the same messages as :func:`decode_access_token`. Invalid tokens are never cached.
Whether the subject still exists is not a property of the token: callers check that separately
(``schema/context.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import jwt

from api.core.errors import Unauthenticated
from api.security.keys import KeyRing
from api.security.tokens import Principal, decode_access_token

__all__ = ["TokenCache"]


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    exp: float
    nbf: float
    kid: str


class TokenCache:
    """Verified tokens, the oldest dropped first past ``size``; one per process (kept in
    ``Runtime.extras``)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    def decode(self, keys: KeyRing, token: str, *, issuer: str, audience: str,
               now: datetime) -> Principal:
        """``decode_access_token`` with the signature check done once per token and key."""
        hit = self._verified.get(token)
        if hit is None or hit.kid != keys.kid:
            principal = decode_access_token(keys, token, issuer=issuer, audience=audience,
                                            now=now)
            claims = jwt.decode(token, options={"verify_signature": False})
            self._verified[token] = _Verified(principal, float(claims["exp"]),
                                              float(claims.get("nbf", claims["iat"])), keys.kid)
            if len(self._verified) > self.size:
                self._verified.popitem(last=False)
            return principal
        ts = now.timestamp()
        if hit.exp <= ts:
            del self._verified[token]
            raise Unauthenticated("token expired")
        if hit.nbf > ts + 30:
            raise Unauthenticated("token not yet valid")
        return hit.principal

    def __len__(self) -> int:
        return len(self._verified)
