"""Input validation shared by every entry point. Each validator normalises or raises BadInput."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from api.core.errors import BadInput

__all__ = ["clean_text", "validate_email", "validate_user_id", "validate_password",
           "validate_phone", "validate_date_of_birth", "validate_full_name", "validate_address"]

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,22}$")


def clean_text(value: str, *, field: str, max_len: int, min_len: int = 1) -> str:
    """NFC-normalise, strip, and refuse control characters, lone surrogates and bad sizes."""
    if not isinstance(value, str):
        raise BadInput(f"{field} must be text", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{field} is not valid text", field=field) from None
    value = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") for ch in value):
        raise BadInput(f"{field} contains control characters", field=field)
    if len(value) < min_len:
        raise BadInput(f"{field} is required", field=field)
    if len(value) > max_len:
        raise BadInput(f"{field} is longer than {max_len} characters", field=field)
    return value


def validate_user_id(value: str) -> str:
    value = clean_text(value, field="userId", max_len=32)
    if not _USER_ID.match(value):
        raise BadInput("userId must be 3-32 letters, digits, '.', '_' or '-', starting with a "
                       "letter or digit", field="userId")
    return value


def validate_email(value: str) -> str:
    value = clean_text(value, field="email", max_len=254)
    if not _EMAIL.match(value) or len(value.split("@", 1)[0]) > 64:
        raise BadInput("email is not a valid address", field="email")
    local, domain = value.split("@", 1)
    return f"{local}@{domain.lower()}"


def validate_full_name(value: str) -> str:
    return clean_text(value, field="fullName", max_len=200)


def validate_address(value: str) -> str:
    return clean_text(value, field="address", max_len=500)


def validate_phone(value: str) -> str:
    value = clean_text(value, field="phone", max_len=24)
    if not _PHONE.match(value):
        raise BadInput("phone must be digits, spaces, '()', '-' and an optional leading '+'",
                       field="phone")
    return value


def validate_date_of_birth(value: date, today: date) -> date:
    if value > today:
        raise BadInput("dateOfBirth is in the future", field="dateOfBirth")
    if value.year < 1900:
        raise BadInput("dateOfBirth is before 1900", field="dateOfBirth")
    return value


def validate_password(value: str, *, user_id: str = "", email: str = "") -> str:
    """NIST 800-63B style: length over composition, no trivial or identity-derived passwords."""
    if not isinstance(value, str) or not 12 <= len(value) <= 128:
        raise BadInput("password must be 12 to 128 characters", field="password")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("password is not valid text", field="password") from None
    lowered = value.casefold()
    if len(set(value)) < 5:
        raise BadInput("password is too repetitive", field="password")
    for weak in (user_id.casefold(), email.split("@")[0].casefold()):
        if weak and len(weak) >= 3 and weak in lowered:
            raise BadInput("password must not contain your user id or email", field="password")
    if lowered in _COMMON:
        raise BadInput("password is too common", field="password")
    return value


_COMMON = frozenset({
    "password1234", "123456789012", "qwertyuiopas", "passwordpassword", "iloveyou1234",
    "letmein12345", "welcome12345", "administrator", "correcthorsebatterystaple",
})
