"""The runtime every service takes: settings, the injected clock, the loaded keys and the
event bus. The composition root (``api/service/composition.py``) builds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.core.clock import Clock
from api.core.settings import Settings
from api.platform.events import EventBus
from api.security.keys import KeyRing

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    keys: KeyRing
    events: EventBus
    # Process-wide objects services build lazily and reuse (adapter registry, rate limiter).
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """Shorthand for ``self.clock.now()``, the only source of time in services."""
        return self.clock.now()
