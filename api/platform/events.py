"""Domain events and the bus that hands them to their subscribers.

A service that changes a member's profile or consent publishes one typed event after its
transaction commits. Who reacts, and in which order, is declared in one place, the composition
root (``api/service/composition.py``); no module subscribes itself on import.

Publishing an event type the composition did not declare raises :class:`UndeclaredEvent`: a
runtime assembled without the composition fails loudly instead of silently doing less.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.platform.runtime import Runtime

__all__ = ["EventBus", "Subscriber", "UndeclaredEvent"]

log = logging.getLogger("consentry.events")

Subscriber = Callable[["Runtime", Any], Awaitable[None]]


class UndeclaredEvent(RuntimeError):
    """An event type with no entry in the composition: the runtime was wired incompletely."""


class EventBus:
    """Subscribers per event type, fixed when the bus is built."""

    def __init__(self, subscribers: Mapping[type, Sequence[Subscriber]]) -> None:
        self._subscribers = {kind: tuple(subs) for kind, subs in subscribers.items()}

    def subscribers(self, kind: type) -> tuple[Subscriber, ...]:
        try:
            return self._subscribers[kind]
        except KeyError:
            raise UndeclaredEvent(f"no subscribers declared for {kind.__name__}") from None

    async def publish(self, rt: Runtime, event: object) -> None:
        """Run every subscriber in order. The change is already committed, so one failing
        subscriber is logged and the next still runs; the ``sharing_catch_up`` job repairs
        partner state that a failed subscriber left behind."""
        for subscriber in self.subscribers(type(event)):
            try:
                await subscriber(rt, event)
            except Exception:
                log.exception("subscriber %s failed for %s", getattr(subscriber, "__qualname__",
                                                                    subscriber),
                              type(event).__name__)
