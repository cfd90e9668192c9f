"""Failed sign-in throttling: slowed after a few failures, then refused with RATE_LIMITED.

Keyed by a blind index of the user id, so guessing against unknown accounts is throttled the
same way and the table holds no plaintext.

An attempt is counted (one atomic upsert, ``failures = failures + 1 ... RETURNING``) BEFORE the
password is verified, and refused once the count passes ``login_lock_after``: parallel guesses,
in one process or many, can never get more than that many passwords checked (reading the count,
verifying, then writing it back let 20 parallel guesses through). A success clears the count;
a failure simply leaves its reservation in place.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from tortoise import connections

from api.core.errors import RateLimited
from api.models.member import LoginThrottle
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index

__all__ = ["attempt", "check", "record_failure", "reset", "throttle_key"]

_COUNT = """INSERT INTO login_throttle (key, failures, window_start) VALUES ({0}, 1, {1})
ON CONFLICT (key) DO UPDATE SET failures = login_throttle.failures + 1
RETURNING failures, window_start, locked_until"""


def throttle_key(rt: Runtime, user_id: str) -> str:
    return blind_index(rt.keys, "throttle", user_id)


def _ends(row: LoginThrottle, window: timedelta) -> datetime:
    return max(row.window_start + window, row.locked_until or row.window_start)


async def _count(key: str, now: datetime) -> int:
    conn = connections.get("default")
    marks = ("$1", "$2") if conn.capabilities.dialect == "postgres" else ("?", "?")
    # A datetime parameter is stored the way tortoise stores it (sqlite3's registered adapter).
    rows = await conn.execute_query_dict(_COUNT.format(*marks), [key, now])
    return int(rows[0]["failures"])


async def attempt(rt: Runtime, key: str) -> None:
    """Count this attempt before the secret is checked; refuse past the limit, slow down near it.

    The caller must ``reset`` on success; a failure needs nothing more.
    """
    now = rt.now()
    s = rt.settings
    window = timedelta(seconds=s.login_window_seconds)
    row = await LoginThrottle.get_or_none(key=key)
    if row is not None and _ends(row, window) <= now:
        # A new window. Matching the old start lets exactly one of several racing callers reset.
        await LoginThrottle.filter(key=key, window_start=row.window_start).update(
            failures=0, window_start=now, locked_until=None)
    count = await _count(key, now)
    if count > s.login_lock_after:
        row = await LoginThrottle.get_or_none(key=key)
        ends = _ends(row, window) if row is not None else now + window
        raise RateLimited("too many failed sign-ins; try again later",
                          retry_after=max(1, int((ends - now).total_seconds()) + 1))
    if count == s.login_lock_after:
        # The last attempt allowed: should it fail, the account stays locked a full window.
        await LoginThrottle.filter(key=key).update(locked_until=now + window)
    if count > s.login_slow_after:
        await asyncio.sleep(min(0.25 * (count - s.login_slow_after), 1.0))


async def check(rt: Runtime, key: str) -> None:
    """The same as ``attempt`` (kept for callers written against check/record_failure)."""
    await attempt(rt, key)


async def record_failure(rt: Runtime, key: str) -> None:
    """Nothing to do: ``attempt`` counted the attempt before it was verified."""


async def reset(key: str) -> None:
    await LoginThrottle.filter(key=key).delete()
