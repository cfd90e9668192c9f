"""Time-based one-time passwords for staff (RFC 6238 through pyotp), checked on the injected clock."""

from __future__ import annotations

from datetime import datetime

import pyotp

__all__ = ["new_secret", "provisioning_uri", "verify_code"]


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str = "Consentry") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def verify_code(secret: str, code: str, now: datetime) -> int | None:
    """The matching time step (±1 step of drift) or None; callers refuse a replayed step."""
    totp = pyotp.TOTP(secret)
    if not code or not code.isdigit():
        return None
    for drift in (0, -1, 1):
        step = int(now.timestamp()) // totp.interval + drift
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
