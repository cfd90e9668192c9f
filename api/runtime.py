"""The runtime every service takes: settings, the injected clock and the loaded keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.clock import Clock, SystemClock
from api.security.keys import KeyRing
from api.settings import Settings

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    keys: KeyRing
    # Process-wide singletons services may attach lazily (adapter registry, rate limiter...).
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
        settings = settings or Settings.from_env()
        return cls(settings, clock or SystemClock(), KeyRing.load(settings))

    def now(self) -> datetime:
        """Shorthand for ``self.clock.now()``, the only source of time in services."""
        return self.clock.now()
