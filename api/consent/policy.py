"""Policy versions (Art. 10): announced at least 30 days ahead, in force by themselves on time.

The version in force at an instant is the one with the latest ``effective_at`` at or before it,
so reads are right without any job. The ``policy_in_force`` job only *records* that a version
came into force (``in_force_recorded_at`` plus an audit entry), once.

An initial version, ``1.0``, is in force from the epoch; it is created lazily the first time a
service needs the policy (tests and fresh installs start from empty tables).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Conflict
from api.members import notifications
from api.models.consent import PolicyVersion
from api.platform import audit
from api.platform.runtime import Runtime

__all__ = ["PolicyView", "NOTICE", "INITIAL_VERSION", "ensure_initial_policy", "in_force",
           "next_after", "announce", "record_in_force"]

NOTICE = timedelta(days=30)
INITIAL_VERSION = "1.0"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INITIAL_TEXT = ("Consentry privacy policy and terms of use, version 1.0. We process your data "
                "only for the purposes you can see and, where the basis is consent, only while "
                "you consent; you may withdraw at any time with one call.")
MAX_TEXT = 200_000
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")
_SEEDED = "policy.seeded"
_IN_FORCE = "policy.in_force"
_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class PolicyView:
    version: str
    text: str
    announced_at: datetime
    effective_at: datetime


def _view(row: PolicyVersion) -> PolicyView:
    return PolicyView(row.version, row.text, row.announced_at, row.effective_at)


async def ensure_initial_policy(rt: Runtime) -> None:
    if rt.extras.get(_SEEDED):
        return
    if not await PolicyVersion.exists(version=INITIAL_VERSION):
        try:
            await PolicyVersion.create(version=INITIAL_VERSION, text=INITIAL_TEXT,
                                       announced_at=EPOCH, effective_at=EPOCH,
                                       in_force_recorded_at=EPOCH)
        except IntegrityError:
            pass  # seeded concurrently
    rt.extras[_SEEDED] = True


@dataclass(frozen=True)
class _InForce:
    """The version in force as read at ``read_at``; it stays in force until ``until``."""

    view: PolicyView
    read_at: datetime
    until: datetime


async def in_force(rt: Runtime, at: datetime | None = None) -> PolicyView:
    """The version in force at ``at`` (default: now).

    The answer for *now* is remembered per runtime (consent writes ask on every call). It is
    exact without asking again until the next version already announced takes effect, or until
    ``NOTICE`` minus a day has passed since it was read: a version announced afterwards, in
    any process, takes effect at least ``NOTICE`` after its announcement (the day absorbs
    clock skew between hosts). A clock that moved back reads again.
    """
    if at is None:
        now = rt.now()
        cached: _InForce | None = rt.extras.get(_IN_FORCE)
        if cached is not None and cached.read_at <= now < cached.until:
            return cached.view
        view = await _in_force_at(rt, now)
        following = await PolicyVersion.filter(effective_at__gt=now).order_by(
            "effective_at").first()
        until = now + NOTICE - _SKEW
        if following is not None:
            until = min(until, following.effective_at)
        rt.extras[_IN_FORCE] = _InForce(view, now, until)
        return view
    return await _in_force_at(rt, at)


async def _in_force_at(rt: Runtime, at: datetime) -> PolicyView:
    await ensure_initial_policy(rt)
    row = await PolicyVersion.filter(effective_at__lte=at).order_by("-effective_at").first()
    assert row is not None  # the initial version is in force from the epoch
    return _view(row)


async def next_after(rt: Runtime, after: datetime) -> PolicyView | None:
    """The earliest version taking effect after both ``after`` and now (announced, pending)."""
    await ensure_initial_policy(rt)
    bound = max(after, rt.now())
    row = await PolicyVersion.filter(effective_at__gt=bound).order_by("effective_at").first()
    return _view(row) if row else None


def _clean(version: str, text: str, effective_at: datetime) -> tuple[str, str, datetime]:
    version = version.strip()
    if not _VERSION.match(version):
        raise BadInput("version must be 1-40 letters, digits, '.', '_' or '-', starting with a "
                       "letter or digit", field="version")
    if not text.strip():
        raise BadInput("text must not be empty", field="text")
    if len(text) > MAX_TEXT:
        raise BadInput(f"text must be at most {MAX_TEXT} characters", field="text")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\r\t" for ch in text):
        raise BadInput("text must not contain control characters", field="text")
    if effective_at.tzinfo is None or effective_at.utcoffset() is None:
        raise BadInput("effectiveAt needs an explicit UTC offset", field="effectiveAt")
    try:
        return version, text, effective_at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadInput("effectiveAt is out of range", field="effectiveAt") from None


async def announce(rt: Runtime, actor: str, version: str, text: str,
                   effective_at: datetime) -> PolicyView:
    """Announce a new version; refused unless it takes effect at least 30 days from now.

    The ``policy.announced`` message to every reachable member is recorded in the same
    transaction (one row); the ``announcements`` job writes the notifications.
    """
    version, text, effective_at = _clean(version, text, effective_at)
    now = rt.now()
    earliest = now + NOTICE
    if effective_at < earliest:
        raise BadInput("a policy version must be announced at least 30 days before it takes "
                       f"effect: effectiveAt must be on or after {earliest.isoformat()}",
                       field="effectiveAt")
    await ensure_initial_policy(rt)
    if await PolicyVersion.exists(version=version):
        raise Conflict(f"policy version {version} already exists")
    if await PolicyVersion.exists(effective_at=effective_at):
        raise Conflict("another policy version takes effect at that same instant")
    try:
        async with in_transaction("default") as conn:
            row = await PolicyVersion.create(version=version, text=text, announced_at=now,
                                             effective_at=effective_at, using_db=conn)
            announcement = await notifications.announce_to_members(
                rt, conn, kind="policy.announced",
                subject=f"Our privacy policy changes on {effective_at.date().isoformat()}",
                body=(f"Version {version} of the privacy policy and terms of use takes effect "
                      f"on {effective_at.isoformat()}. You can read it now; you may withdraw "
                      "any consent at any time."))
            await audit.record(rt, actor, "policy.announce", f"policy:{version}",
                               {"effectiveAt": effective_at.isoformat(),
                                "announcement": announcement},
                               using=conn)
    except IntegrityError:
        raise Conflict(f"policy version {version} already exists") from None
    return _view(row)


async def record_in_force(rt: Runtime) -> int:
    """Record each version whose time has come (idempotent: a version is recorded once)."""
    now = rt.now()
    due = await PolicyVersion.filter(effective_at__lte=now,
                                     in_force_recorded_at__isnull=True).order_by("effective_at")
    recorded = 0
    for row in due:
        async with in_transaction("default") as conn:
            claimed = await PolicyVersion.filter(
                version=row.version, in_force_recorded_at__isnull=True
            ).using_db(conn).update(in_force_recorded_at=now)
            if claimed:
                await audit.record(rt, "job:policy_in_force", "policy.in_force",
                                   f"policy:{row.version}",
                                   {"effectiveAt": row.effective_at.isoformat()}, using=conn)
                recorded += 1
    return recorded
