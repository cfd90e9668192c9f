"""A member's own profile edit: stored, then announced as one :class:`ProfileChanged` event.

What follows an edit (partner events, completing an inaccuracy report) is declared in the
composition root, ``api/service/composition.py``.
"""

from __future__ import annotations

from typing import Any

from api.members import records as members
from api.members.events import ProfileChanged
from api.members.records import MemberView
from api.platform.runtime import Runtime

__all__ = ["update"]


async def update(rt: Runtime, member_id: str, changes: dict[str, Any]) -> MemberView:
    view, change = await members.update_profile(rt, member_id, changes)
    await rt.events.publish(rt, ProfileChanged(view, change))
    if change.changed:
        view = await members.get_view(rt, member_id)
    return view
