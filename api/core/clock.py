"""Injected time, so 30-day and 5-year rules are tested without sleeping."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "clock_from_env"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    """Wall-clock time (honours ``faketime`` since it reads the process clock)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant


def clock_from_env() -> Clock:
    """``CONSENTRY_NOW`` (ISO-8601) pins the clock; used by end-to-end CLI tests."""
    pinned = os.environ.get("CONSENTRY_NOW")
    if pinned:
        return ManualClock(datetime.fromisoformat(pinned).astimezone(UTC))
    return SystemClock()
