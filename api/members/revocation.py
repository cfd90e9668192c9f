"""Ended sessions refused at once, on every API process, for the price of a set lookup.

Access tokens are stateless and live 15 minutes; each carries its session id (``sid``, the
refresh-token family). Ending a session writes a ``revoked_sessions`` row. Each process keeps
a view of the ended sessions and brings it up to date with one indexed query when a request
finds it older than :data:`REFRESH` seconds, so another process's revocation is seen by the
first request more than half a second after it: within one second, as promised. The view waits
for a refresh in progress rather than answering from older data. Its age is read from the
runtime's clock (the system clock when served; tests move a manual clock, so the number of
queries a request makes is deterministic); a clock that went back refreshes too.

Rows are read by ``seq``; the last :data:`OVERLAP` sequence numbers are read again each time, so
a revocation whose transaction committed after a later one is still seen. Entries older than
an access token's lifetime are dropped (every token of such a session has expired).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from api.models.accounts import RevokedSession
from api.platform.runtime import Runtime

__all__ = ["REFRESH", "OVERLAP", "record", "is_revoked"]

REFRESH = 0.5
OVERLAP = 64
_KEY = "sessions.revoked"


@dataclass
class _View:
    ended: dict[str, datetime] = field(default_factory=dict)
    last_seq: int = 0
    fresh_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _view(rt: Runtime) -> _View:
    view: _View | None = rt.extras.get(_KEY)
    if view is None:
        view = rt.extras.setdefault(_KEY, _View())
    return view


def _horizon(rt: Runtime) -> datetime:
    """Sessions ended before this have no unexpired access token left."""
    return rt.now() - timedelta(seconds=rt.settings.access_token_ttl + 300)


async def record(rt: Runtime, session_ids: Iterable[str],
                 conn: BaseDBAsyncClient | None = None) -> None:
    """Write the ended sessions (in ``conn``'s transaction when given); this process refuses
    their tokens from now on, the others after their next refresh."""
    ids = sorted({str(s) for s in session_ids if s})
    if not ids:
        return
    now = rt.now()
    await RevokedSession.bulk_create([RevokedSession(session_id=s, revoked_at=now) for s in ids],
                                     using_db=conn)
    # Pruned, but never the newest row: a sequence must not restart below what readers saw.
    top = await RevokedSession.all().using_db(conn).order_by("-seq").limit(1).values_list(
        "seq", flat=True)
    await RevokedSession.filter(revoked_at__lt=_horizon(rt), seq__lt=top[0]).using_db(
        conn).delete()
    view = _view(rt)
    for s in ids:
        view.ended[s] = now


async def _refresh(rt: Runtime, view: _View) -> None:
    horizon = _horizon(rt)
    query = RevokedSession.filter(seq__gt=max(0, view.last_seq - OVERLAP))
    if view.last_seq == 0:
        query = query.filter(revoked_at__gte=horizon)
    rows = await query.order_by("seq").values_list("seq", "session_id", "revoked_at")
    for seq, sid, at in rows:
        view.ended.setdefault(sid, at)
        view.last_seq = max(view.last_seq, seq)
    if len(view.ended) > 1000 or not rows:
        for sid in [s for s, at in view.ended.items() if at < horizon]:
            del view.ended[sid]


def _stale(rt: Runtime, view: _View) -> bool:
    age = rt.now().timestamp() - view.fresh_at
    return age >= REFRESH or age < 0


async def is_revoked(rt: Runtime, session_id: str) -> bool:
    """Whether the session has ended (raises when the view cannot be refreshed: callers fail
    closed)."""
    view = _view(rt)
    if session_id in view.ended:
        return True
    if _stale(rt, view):
        async with view.lock:
            if _stale(rt, view):
                started = rt.now().timestamp()
                await _refresh(rt, view)
                view.fresh_at = started
    return session_id in view.ended
