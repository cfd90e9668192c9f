"""Cookie and tracking choices per device (Art. 3): necessary is always on, the rest as chosen.

Append-only: every call records the choice with its time and the latest one is in force. A
device id is an opaque client-generated string; when the caller is a signed-in member the choice
is linked to the member too (for exports and erasure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from api.core.errors import BadInput
from api.core.ordered_ids import ordered_uuid
from api.members import liveness
from api.models.consent import CookieChoice
from api.platform import audit
from api.platform.runtime import Runtime

__all__ = ["CookieView", "set_preferences", "current_for_device", "for_member",
           "validate_device_id"]

MAX_DEVICE_ID = 128


@dataclass(frozen=True)
class CookieView:
    device_id: str
    analytics: bool
    personalization: bool
    marketing: bool
    at: datetime
    member_id: str | None = None

    @property
    def necessary(self) -> bool:
        return True


def _view(row: CookieChoice) -> CookieView:
    return CookieView(row.device_id, row.analytics, row.personalization, row.marketing, row.at,
                      str(row.member_id) if row.member_id else None)


def validate_device_id(device_id: str) -> str:
    if not 1 <= len(device_id) <= MAX_DEVICE_ID:
        raise BadInput(f"deviceId must be 1-{MAX_DEVICE_ID} characters", field="deviceId")
    if not device_id.isprintable() or not device_id.isascii() or device_id != device_id.strip():
        raise BadInput("deviceId must be printable ASCII without surrounding spaces",
                       field="deviceId")
    return device_id


async def set_preferences(rt: Runtime, device_id: str, *, analytics: bool,
                          personalization: bool, marketing: bool,
                          member_id: str | None = None) -> CookieView:
    """Record the device's choice now (linked to ``member_id`` when signed in)."""
    device_id = validate_device_id(device_id)
    choice_id = ordered_uuid()
    async with in_transaction("default") as conn:
        if member_id is not None:  # the member may have been destroyed since the token was read
            await liveness.require_live(conn, member_id)
        row = await CookieChoice.create(id=choice_id, device_id=device_id, member_id=member_id,
                                        analytics=analytics, personalization=personalization,
                                        marketing=marketing, at=rt.now(), using_db=conn)
        await audit.record(rt, f"member:{member_id}" if member_id else "device",
                           "cookies.set", f"cookie_choice:{choice_id}",
                           {"analytics": analytics, "personalization": personalization,
                            "marketing": marketing}, using=conn)
    return _view(row)


async def current_for_device(device_id: str) -> CookieView | None:
    row = await CookieChoice.filter(device_id=device_id).order_by("-at", "-id").first()
    return _view(row) if row else None


async def for_member(member_id: str) -> list[CookieView]:
    """Every choice linked to a member, oldest first (exports)."""
    return [_view(r) for r in await CookieChoice.filter(member_id=member_id).order_by("at")]
