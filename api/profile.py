"""A member's own profile edit, and everything that must follow it.

Other capabilities register ``after_update`` hooks (partner events, correction completion);
they run after the edit is stored, with the fields that changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from api import members
from api.members import MemberView, ProfileChange
from api.runtime import Runtime

__all__ = ["update", "after_update"]

AfterUpdate = Callable[[Runtime, MemberView, ProfileChange], Awaitable[None]]
after_update: list[AfterUpdate] = []


async def update(rt: Runtime, member_id: str, changes: dict[str, Any]) -> MemberView:
    view, change = await members.update_profile(rt, member_id, changes)
    for hook in after_update:
        await hook(rt, view, change)
    if change.changed:
        view = await members.get_view(rt, member_id)
    return view
