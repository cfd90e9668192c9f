"""Failed sign-in throttling: slowed after a few failures, then refused with RATE_LIMITED.

Keyed by a blind index of the user id, so guessing against unknown accounts is throttled the
same way and the table holds no plaintext.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from api.core.errors import RateLimited
from api.models.member import LoginThrottle
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index

__all__ = ["check", "record_failure", "reset", "throttle_key"]


def throttle_key(rt: Runtime, user_id: str) -> str:
    return blind_index(rt.keys, "throttle", user_id)


async def check(rt: Runtime, key: str) -> None:
    """Refuse while locked; sleep briefly once past the slow-down threshold."""
    row = await LoginThrottle.get_or_none(key=key)
    if row is None:
        return
    now = rt.now()
    if row.locked_until and row.locked_until > now:
        raise RateLimited("too many failed sign-ins; try again later",
                          retry_after=int((row.locked_until - now).total_seconds()) + 1)
    window_open = now - row.window_start < timedelta(seconds=rt.settings.login_window_seconds)
    if window_open and row.failures >= rt.settings.login_slow_after:
        await asyncio.sleep(min(0.25 * (row.failures - rt.settings.login_slow_after + 1), 1.0))


async def record_failure(rt: Runtime, key: str) -> None:
    now = rt.now()
    window = timedelta(seconds=rt.settings.login_window_seconds)
    row, _ = await LoginThrottle.get_or_create(key=key, defaults={"window_start": now})
    if now - row.window_start >= window:
        row.failures, row.window_start, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= rt.settings.login_lock_after:
        row.locked_until = now + window
    await row.save()


async def reset(key: str) -> None:
    await LoginThrottle.filter(key=key).delete()
