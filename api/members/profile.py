"""A member's own profile edit: stored, then announced as one :class:`ProfileChanged` event.

A new email address is not stored here: it waits as ``pendingEmail`` until the member verifies
it (``api/members/verification.py``), and only then changes (and is announced).

What follows an edit (partner events, completing an inaccuracy report) is declared in the
composition root, ``api/service/composition.py``.
"""

from __future__ import annotations

from typing import Any

from api.members import records as members
from api.members import verification
from api.members.events import ProfileChanged
from api.members.records import MemberView
from api.platform.runtime import Runtime

__all__ = ["update"]


async def update(rt: Runtime, member_id: str, changes: dict[str, Any]) -> MemberView:
    changes = dict(changes)
    asks_email = "email" in changes
    email = changes.pop("email", None)
    if asks_email:
        verification.check_address(email)  # a bad address changes nothing else either
    view, change = await members.update_profile(rt, member_id, changes)
    await rt.events.publish(rt, ProfileChanged(view, change))
    if asks_email:
        await verification.request_change(rt, member_id, email)
    if change.changed or asks_email:
        view = await members.get_view(rt, member_id)
    return view
