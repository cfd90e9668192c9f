"""Password hashing with argon2id at OWASP's recommended parameters (m=19 MiB, t=2, p=1).

A hash or a check costs tens of milliseconds of CPU by design. Run on the event loop it would
stall every other request of the process for that long (a burst of sign-ins would hold up
every ``me``), so both run on a worker thread; argon2's C code releases the GIL while it works.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "verify_password", "DUMMY_HASH"]

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

DUMMY_HASH = _hasher.hash("consentry-timing-equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str, password: str) -> bool:
    """Constant-effort check; unknown accounts should be checked against ``DUMMY_HASH``."""
    return await asyncio.to_thread(_verify, stored, password)
