"""Request rate limits for every write a caller can make without a token, and ``/oauth/token``.

Sign-in and registration per account and per address; cookie choices per device id and per
address (per member for a signed-in caller); refresh and logout per address.

Fixed windows, limits written the ``limits`` way (``"20/minute"``, settings ``rate_limit_*``).
Counters live where every API process sees them, so a limit holds across processes:

- default: the main database (``rate_counters``), one atomic upsert per hit, windows following
  ``rt.now()`` so tests move the clock instead of sleeping;
- ``CONSENTRY_RATE_LIMIT_URL=redis://host:port``: Redis through ``limits``' async storage
  (windows then follow Redis' own clock).

Identities are keyed hashes (never a plaintext user id or address in storage). This is separate
from ``api.members.throttle``, which counts *failed* sign-ins per account and locks it; this module caps
*all* attempts, so a spray over many accounts from one address is refused too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import limits
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import connections

from api.core.errors import RateLimited
from api.platform.runtime import Runtime

__all__ = ["hit", "check_login", "check_register", "check_cookie_choice", "check_session",
           "check_token_endpoint", "check_token_request", "too_many_requests"]

_UPSERT = """INSERT INTO rate_counters (key, window_start, count) VALUES ({0}, {1}, 1)
ON CONFLICT (key) DO UPDATE SET
  count = CASE WHEN rate_counters.window_start = excluded.window_start
               THEN rate_counters.count + 1 ELSE 1 END,
  window_start = excluded.window_start
RETURNING count"""


@dataclass(frozen=True)
class _Limit:
    amount: int
    seconds: int


def _parse(text: str) -> _Limit:
    item = limits.parse(text)
    return _Limit(int(item.amount), int(item.get_expiry()))


def _identity(rt: Runtime, name: str, value: str) -> str:
    digest = rt.keys.mac("ratelimit", f"{name}\x00{value}".encode("utf-8", "replace")).hex()
    return f"{name}:{digest[:40]}"


async def _hit_database(rt: Runtime, key: str, limit: _Limit) -> int | None:
    now = rt.now().timestamp()
    start = math.floor(now / limit.seconds) * limit.seconds
    conn = connections.get("default")
    window = datetime.fromtimestamp(start, UTC)
    value: datetime | str  # SQLite stores the window as ISO text
    if conn.capabilities.dialect == "postgres":
        sql, value = _UPSERT.format("$1", "$2"), window
    else:
        sql, value = _UPSERT.format("?", "?"), window.isoformat()
    rows = await conn.execute_query_dict(sql, [f"{key}:{limit.seconds}", value])
    if rows[0]["count"] <= limit.amount:
        return None
    return max(1, math.ceil(start + limit.seconds - now))


async def _hit_redis(rt: Runtime, key: str, text: str) -> int | None:
    limiter = rt.extras.get("ratelimit.redis")
    if limiter is None:
        url = rt.settings.rate_limit_url
        uri = url if url.startswith("async+") else f"async+{url}"
        limiter = FixedWindowRateLimiter(RedisStorage(uri, key_prefix=rt.settings.issuer))
        rt.extras["ratelimit.redis"] = limiter
    item = limits.parse(text)
    if await limiter.hit(item, key):
        return None
    stats = await limiter.get_window_stats(item, key)
    return max(1, math.ceil(stats.reset_time - time.time()))


async def hit(rt: Runtime, name: str, limit: str, identity: str) -> None:
    """Count one attempt of ``name`` by ``identity``; raise RateLimited once over ``limit``."""
    if not limit or not identity:
        return
    key = _identity(rt, name, identity)
    if rt.settings.rate_limit_url:
        retry = await _hit_redis(rt, key, limit)
    else:
        retry = await _hit_database(rt, key, _parse(limit))
    if retry is not None:
        raise RateLimited("too many attempts; try again later", retry_after=retry)


async def _both(rt: Runtime, name: str, account: str, address: str, per_account: str,
                per_address: str) -> None:
    # The address is counted first: a spray across many accounts is stopped at its source.
    await hit(rt, f"{name}-ip", per_address, address)
    await hit(rt, name, per_account, account.strip())


async def check_login(rt: Runtime, user_id: str, address: str) -> None:
    s = rt.settings
    await _both(rt, "login", str(user_id)[:256], address, s.rate_limit_login, s.rate_limit_login_ip)


async def check_register(rt: Runtime, user_id: str, address: str) -> None:
    s = rt.settings
    await _both(rt, "register", str(user_id)[:256], address, s.rate_limit_register,
                s.rate_limit_register_ip)


async def check_cookie_choice(rt: Runtime, device_id: str, address: str,
                              member_id: str | None) -> None:
    """A cookie choice: per device id, and per address (anonymous) or per member (signed in).

    The address (or member) is counted first, so new device ids cannot dodge the limit.
    """
    s = rt.settings
    if member_id is None:
        await hit(rt, "cookies-ip", s.rate_limit_anonymous_ip, address)
    else:
        await hit(rt, "cookies-member", s.rate_limit_anonymous_ip, member_id)
    await hit(rt, "cookies", s.rate_limit_device, device_id)


async def check_session(rt: Runtime, address: str) -> None:
    """``refresh`` and ``logout``, which need no access token: per address."""
    await hit(rt, "session-ip", rt.settings.rate_limit_session_ip, address)


async def check_token_endpoint(rt: Runtime, client_id: str, address: str) -> None:
    s = rt.settings
    await _both(rt, "token", str(client_id)[:256], address, s.rate_limit_token,
                s.rate_limit_token_ip)


async def check_token_request(rt: Runtime, request: Request) -> None:
    """The token endpoint's limits, reading client_id from the form or HTTP Basic credentials.

    The body is read (and cached by starlette on the request) here; the endpoint reads it again.
    """
    address = request.client.host if request.client else ""
    client_id = ""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        import base64
        import binascii

        try:
            client_id = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError, ValueError):
            client_id = ""
    if not client_id and "application/x-www-form-urlencoded" in request.headers.get(
            "content-type", ""):
        from urllib.parse import parse_qs

        try:
            form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=50)
        except ValueError:  # too many fields: the address limit still applies
            form = {}
        client_id = (form.get("client_id") or [""])[0]
    await check_token_endpoint(rt, client_id, address)


def too_many_requests(exc: RateLimited) -> JSONResponse:
    """The OAuth endpoint's refusal: HTTP 429 with Retry-After (RFC 6585)."""
    return JSONResponse({"error": "rate_limited", "error_description": exc.message,
                         "retry_after": exc.retry_after},
                        status_code=429, headers={"retry-after": str(exc.retry_after)})
