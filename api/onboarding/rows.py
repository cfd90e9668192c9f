"""Judging raw rows: every value is checked the way ``register``, ``recordPurchase`` and
``giveConsent`` check it, plus what only an import can get wrong (a user id twice in the file,
a consent dated in the future or under a policy version that did not exist yet).

Rows are judged on their own and against the file (:func:`judge`); checks against the store
(an email another member already uses) are the importer's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from api.consent.purposes import PurposeView
from api.core.errors import BadInput
from api.core.validation import (
    clean_text,
    validate_address,
    validate_date_of_birth,
    validate_email,
    validate_full_name,
    validate_phone,
    validate_user_id,
)
from api.onboarding.formats import RawRow, Rejection

# The same checks as recordPurchase (private there: purchases.py could export them).
from api.sharing.purchases import _amount as clean_amount
from api.sharing.purchases import _currency as clean_currency

__all__ = ["PurchaseRecord", "ConsentRecord", "MemberRecord", "Context", "judge"]

_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$")
_REFERENCE_MAX = 120
MAX_ENTRIES = 1000  # purchases or consents on one row


@dataclass(frozen=True)
class PurchaseRecord:
    amount: str
    currency: str
    reference: str
    at: datetime


@dataclass(frozen=True)
class ConsentRecord:
    purpose: PurposeView
    at: datetime
    policy_version: str
    source: str


@dataclass(frozen=True)
class MemberRecord:
    line: int
    user_id: str
    email: str
    full_name: str
    date_of_birth: date | None
    phone: str | None
    address: str | None
    purchases: tuple[PurchaseRecord, ...]
    consents: tuple[ConsentRecord, ...]


@dataclass(frozen=True)
class Context:
    """What rows are judged against: the instant of the import, the purposes and the policy
    versions (name -> effective time) that exist."""

    now: datetime
    purposes: dict[str, PurposeView]
    policies: dict[str, datetime]


def _instant(value: Any, field: str, now: datetime) -> datetime:
    if not isinstance(value, str):
        raise BadInput("must be an ISO-8601 time such as 2021-03-04T10:00:00Z", field=field)
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput("must be an ISO-8601 time such as 2021-03-04T10:00:00Z",
                       field=field) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise BadInput("needs an explicit UTC offset (Z or +01:00)", field=field)
    at = at.astimezone(UTC)
    if at > now:
        raise BadInput("is in the future", field=field)
    if at.year < 1970:
        raise BadInput("is before 1970", field=field)
    return at


def _date_of_birth(value: Any, today: date) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput("dateOfBirth must be a date such as 1980-02-29", field="dateOfBirth")
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput("dateOfBirth must be a date such as 1980-02-29",
                       field="dateOfBirth") from None
    return validate_date_of_birth(parsed, today)


def _optional(value: Any, check: Callable[[str], str]) -> str | None:
    return None if value is None else check(value)


def _entries(value: Any, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise BadInput("must be a list of objects", field=field)
    if len(value) > MAX_ENTRIES:
        raise BadInput(f"has more than {MAX_ENTRIES} entries", field=field)
    return value


def _purchase(entry: dict[str, Any], n: int, ctx: Context) -> PurchaseRecord:
    where = f"purchases[{n}]"
    extra = sorted(set(entry) - {"amount", "currency", "reference", "at"})
    if extra:
        raise BadInput(f"unknown key(s) {', '.join(extra)}", field=where)
    try:
        return PurchaseRecord(
            clean_amount(entry.get("amount") or ""), clean_currency(entry.get("currency") or ""),
            clean_text(entry.get("reference") or "", field="reference",
                       max_len=_REFERENCE_MAX),
            _instant(entry.get("at"), "at", ctx.now))
    except BadInput as exc:
        raise BadInput(exc.message, field=f"{where}.{exc.extensions.get('field')}") from None


def _consent(entry: dict[str, Any], n: int, ctx: Context) -> ConsentRecord:
    where = f"consents[{n}]"
    extra = sorted(set(entry) - {"purpose", "at", "policyVersion", "source"})
    if extra:
        raise BadInput(f"unknown key(s) {', '.join(extra)}", field=where)
    name = entry.get("purpose")
    purpose = ctx.purposes.get(name) if isinstance(name, str) else None
    if purpose is None:
        raise BadInput("unknown purpose; see the purposes query for the list",
                       field=f"{where}.purpose")
    if not purpose.needs_consent:
        raise BadInput(f"purpose {purpose.name} rests on {purpose.legal_basis}, not consent",
                       field=f"{where}.purpose")
    at = _instant(entry.get("at"), f"{where}.at", ctx.now)
    version = entry.get("policyVersion")
    effective = ctx.policies.get(version) if isinstance(version, str) else None
    if effective is None:
        raise BadInput("unknown policy version", field=f"{where}.policyVersion")
    if effective > at:
        raise BadInput("that policy version was not yet in effect at this time",
                       field=f"{where}.policyVersion")
    source = entry.get("source")
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise BadInput("source must be 1-40 letters, digits, '.', '_', ':', '/' or '-' "
                       "(where the consent was collected, such as web-form)",
                       field=f"{where}.source")
    assert isinstance(version, str)
    return ConsentRecord(purpose, at, version, source)


def _member(row: RawRow, ctx: Context) -> MemberRecord:
    v = row.values
    purchases = tuple(_purchase(e, n, ctx) for n, e in enumerate(_entries(v.get("purchases"),
                                                                          "purchases")))
    consents = tuple(_consent(e, n, ctx) for n, e in enumerate(_entries(v.get("consents"),
                                                                       "consents")))
    seen: set[str] = set()
    for n, c in enumerate(consents):
        if c.purpose.name in seen:
            raise BadInput("the same purpose appears twice", field=f"consents[{n}].purpose")
        seen.add(c.purpose.name)
    for required in ("userId", "email", "fullName"):
        if v.get(required) is None:
            raise BadInput(f"{required} is required", field=required)
    return MemberRecord(
        line=row.line, user_id=validate_user_id(v["userId"]), email=validate_email(v["email"]),
        full_name=validate_full_name(v["fullName"]),
        date_of_birth=_date_of_birth(v.get("dateOfBirth"), ctx.now.date()),
        phone=_optional(v.get("phone"), validate_phone),
        address=_optional(v.get("address"), validate_address),
        purchases=purchases, consents=consents)


def judge(rows: list[RawRow], ctx: Context) -> tuple[list[MemberRecord], list[Rejection]]:
    """Every row, in file order: the records that pass, and a rejection per row that does
    not (the first problem found on it). A user id or email seen on an earlier line rejects
    the later one."""
    records: list[MemberRecord] = []
    rejections: list[Rejection] = []
    user_ids: dict[str, int] = {}
    emails: dict[str, int] = {}
    for row in rows:
        try:
            record = _member(row, ctx)
        except BadInput as exc:
            field = exc.extensions.get("field")
            rejections.append(Rejection(row.line, str(field) if field else None, exc.message))
            continue
        email_key = record.email.casefold()
        user_key = record.user_id.casefold()  # Alice and alice are one account
        if user_key in user_ids:
            rejections.append(Rejection(row.line, "userId",
                                        f"the same userId is on line {user_ids[user_key]}"))
            continue
        if email_key in emails:
            rejections.append(Rejection(row.line, "email",
                                        f"the same email is on line {emails[email_key]}"))
            continue
        user_ids[user_key] = row.line
        emails[email_key] = row.line
        records.append(record)
    return records, rejections
