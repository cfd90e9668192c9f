"""What a consent event looks like to the rest of the service (no ORM objects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.models.enums import ConsentState
from api.platform import plain_reads

__all__ = ["ConsentView", "view_of_row"]


@dataclass(frozen=True)
class ConsentView:
    id: str
    member_id: str
    purpose: str
    state: ConsentState
    policy_version: str
    at: datetime
    receipt: str


def view_of_row(row: Sequence[Any]) -> ConsentView:
    """An event read as a plain row, its columns in :class:`ConsentView`'s order (``id``,
    ``member_id``, ``purpose``, ``state``, ``policy_version``, ``at``, ``receipt``): what
    ``me`` and the consent batches read back."""
    id_, member, purpose, state, version, at, receipt = row
    return ConsentView(str(id_), str(member), purpose, ConsentState(state), version,
                       plain_reads.as_datetime(at), receipt)
