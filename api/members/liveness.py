"""Is the subject of a member token still a member? Asked on every member request.

Access tokens are stateless and cached once verified (``api/security/token_cache.py``): nothing
in a token says its member was destroyed, so without this check the token of a withdrawn
member would act until it expires (write cookie choices, open requests no admin can close).

- :func:`is_live` answers from a small per-process cache: a member seen live is not asked
  again for :data:`TTL`; a member this process destroyed (:func:`forget`, called by
  ``api/rights/erasure.py``) is refused at once and for good.
- Another process learns of a destruction within :data:`TTL`. Until then every service that
  writes for a member checks the member row inside its transaction (:func:`lock_live`), so
  nothing is written for a member that no longer exists, whichever process is asked.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from api.core.errors import Unauthenticated
from api.models.enums import MemberStatus
from api.models.member import Member
from api.platform.runtime import Runtime

__all__ = ["TTL", "GONE", "is_live", "forget", "lock_live", "require_live"]

TTL = timedelta(seconds=30)
SIZE = 10_000
GONE = "this membership no longer exists"
_LIVE = "members.live"
_GONE = "members.gone"


def _cache(rt: Runtime, key: str) -> OrderedDict[str, datetime]:
    cache: OrderedDict[str, datetime] | None = rt.extras.get(key)
    if cache is None:
        cache = rt.extras.setdefault(key, OrderedDict())
    return cache


def _remember(cache: OrderedDict[str, datetime], member_id: str, at: datetime) -> None:
    cache[member_id] = at
    cache.move_to_end(member_id)
    if len(cache) > SIZE:
        cache.popitem(last=False)


async def is_live(rt: Runtime, member_id: str) -> bool:
    """True while the member exists and has not withdrawn (cached per process, see above)."""
    gone = _cache(rt, _GONE)
    if member_id in gone:
        return False
    live = _cache(rt, _LIVE)
    now = rt.now()
    seen = live.get(member_id)
    if seen is not None and seen <= now < seen + TTL:
        return True
    if not await Member.filter(id=member_id).exclude(status=MemberStatus.WITHDRAWN).exists():
        live.pop(member_id, None)
        return False
    if member_id in gone:  # destroyed by this process while we asked
        return False
    _remember(live, member_id, now)
    return True


def forget(rt: Runtime, member_id: str) -> None:
    """This process destroyed the member: refuse its tokens from now on."""
    _cache(rt, _LIVE).pop(member_id, None)
    _remember(_cache(rt, _GONE), member_id, rt.now())


async def lock_live(conn: BaseDBAsyncClient | None, member_id: str) -> bool:
    """Inside a write transaction: lock the member row (PostgreSQL; SQLite serialises writes)
    and say whether the member still exists and has not withdrawn. A destruction running at
    the same time either waits for this transaction (and then cleans up what it wrote) or has
    committed already (and this answers False)."""
    member = await Member.filter(id=member_id).using_db(conn).select_for_update().first()
    return member is not None and member.status != MemberStatus.WITHDRAWN


async def require_live(conn: BaseDBAsyncClient | None, member_id: str) -> None:
    """:func:`lock_live`, raising UNAUTHENTICATED (the caller's token names no member)."""
    if not await lock_live(conn, member_id):
        raise Unauthenticated(GONE)
