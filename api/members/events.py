"""Events the members domain publishes after a change is committed (subscribers are declared
in ``api/service/composition.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from api.members.records import MemberView, ProfileChange

__all__ = ["ProfileChanged"]


@dataclass(frozen=True)
class ProfileChanged:
    """A member's profile edit is stored: ``view`` as it stands after it, ``change`` what
    changed (fields and previous values) and whether a correction was pending."""

    view: MemberView
    change: ProfileChange
