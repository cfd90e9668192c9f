"""What a consent event looks like to the rest of the service (no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.models.enums import ConsentState

__all__ = ["ConsentView"]


@dataclass(frozen=True)
class ConsentView:
    id: str
    member_id: str
    purpose: str
    state: ConsentState
    policy_version: str
    at: datetime
    receipt: str
