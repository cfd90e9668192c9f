"""Events the consent domain publishes after a change is committed (subscribers are declared
in ``api/service/composition.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from api.models.enums import ConsentState

__all__ = ["ConsentChanged"]


@dataclass(frozen=True)
class ConsentChanged:
    """A member gave or withdrew consent to a purpose (the event id is the consent event's)."""

    event_id: str
    member_id: str
    purpose: str
    state: ConsentState
