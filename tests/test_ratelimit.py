"""Rate limits on login, register and /oauth/token: per account, per address, across processes.

Two apps built on two Runtime objects stand in for two API processes: they share only the
counter storage (the main database, or Redis), exactly as separate processes would.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from api.platform.runtime import Runtime
from api.service.asgi import create_app
from api.service.composition import with_settings
from tests.conftest import GQL, LOGIN, PASSWORD, REGISTER, error_code, register_member

REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
async def make_client(rt: Runtime) -> AsyncIterator[Callable[..., GQL]]:
    """Build an app (a "process") with changed settings, seen from a given client address."""
    async with AsyncExitStack() as stack:
        def make(address: str = "127.0.0.1", runtime: Runtime | None = None, **overrides) -> GQL:
            process = runtime or with_settings(rt, **overrides)
            transport = httpx.ASGITransport(app=create_app(process, manage_db=False),
                                            client=(address, 40000))
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            stack.push_async_callback(client.aclose)
            return GQL(client)
        yield make


async def _login_codes(gql: GQL, user_id: str, n: int, password: str = PASSWORD) -> list:
    return [error_code(await gql(LOGIN, {"u": user_id, "p": password})) for _ in range(n)]


def _register_input(user_id: str) -> dict:
    return {"input": {"userId": user_id, "email": f"{user_id}@example.org",
                      "fullName": "Rate Tester", "password": PASSWORD}}


async def test_login_is_limited_per_account_with_retry_after(make_client, gql):
    await register_member(gql, "erin")
    limited = make_client(rate_limit_login="3/minute")
    assert await _login_codes(limited, "erin", 3) == [None, None, None]
    body = await limited(LOGIN, {"u": "erin", "p": PASSWORD})
    assert error_code(body) == "RATE_LIMITED"
    retry = body["errors"][0]["extensions"]["retryAfter"]
    assert isinstance(retry, int) and 1 <= retry <= 60


async def test_login_limit_window_follows_the_clock(make_client, gql, clock):
    await register_member(gql, "frank")
    limited = make_client(rate_limit_login="2/minute")
    assert await _login_codes(limited, "frank", 3) == [None, None, "RATE_LIMITED"]
    clock.advance(seconds=61)
    assert await _login_codes(limited, "frank", 1) == [None]


async def test_login_is_limited_per_address_across_accounts(make_client):
    """A password spray over many accounts from one address stops at the address limit."""
    spray = make_client("203.0.113.7", rate_limit_login_ip="5/minute")
    codes = [error_code(await spray(LOGIN, {"u": f"victim{i}", "p": "Summer2026!!xx"}))
             for i in range(7)]
    assert codes[:5] == ["UNAUTHENTICATED"] * 5 and codes[5:] == ["RATE_LIMITED"] * 2
    # Another address is not affected.
    other = make_client("198.51.100.9", rate_limit_login_ip="5/minute")
    assert error_code(await other(LOGIN, {"u": "victim0", "p": "x"})) == "UNAUTHENTICATED"


async def test_register_is_limited_per_address_and_per_account(make_client):
    by_address = make_client("203.0.113.8", rate_limit_register_ip="3/hour")
    codes = [error_code(await by_address(REGISTER, _register_input(f"newbie{i}")))
             for i in range(4)]
    assert codes == [None, None, None, "RATE_LIMITED"]
    by_account = make_client("203.0.113.9", rate_limit_register="2/hour")
    codes = [error_code(await by_account(REGISTER, _register_input("samename")))
             for _ in range(3)]
    assert codes == [None, "CONFLICT", "RATE_LIMITED"]


async def test_limit_holds_across_two_processes_sharing_the_database(make_client, gql):
    await register_member(gql, "grace")
    one = make_client(rate_limit_login="4/minute")
    two = make_client(rate_limit_login="4/minute")
    codes = []
    for i in range(6):
        codes += await _login_codes(one if i % 2 else two, "grace", 1)
    assert codes == [None] * 4 + ["RATE_LIMITED"] * 2


async def test_token_endpoint_answers_429_with_retry_after(make_client):
    gql = make_client("203.0.113.10", rate_limit_token="3/minute")
    form = {"grant_type": "client_credentials", "client_id": "cid-1", "client_secret": "nope"}
    statuses = [(await gql.client.post("/oauth/token", data=form)).status_code for _ in range(4)]
    assert 429 not in statuses[:3] and statuses[3] == 429
    response = await gql.client.post("/oauth/token", data=form)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"] == "rate_limited"
    # Another client id from another address still gets an answer from the endpoint itself.
    other = make_client("203.0.113.11", rate_limit_token="3/minute")
    fresh = await other.client.post("/oauth/token", data={**form, "client_id": "cid-2"})
    assert fresh.status_code != 429


async def test_token_endpoint_is_limited_per_address_for_basic_auth(make_client):
    gql = make_client("203.0.113.12", rate_limit_token_ip="2/minute")
    statuses = []
    for i in range(3):
        response = await gql.client.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            auth=(f"client-{i}", "secret"))
        statuses.append(response.status_code)
    assert 429 not in statuses[:2] and statuses[2] == 429


async def test_rate_limit_storage_holds_no_plaintext_identity(make_client, rt):
    from api.models.ops import RateCounter

    limited = make_client("203.0.113.13")
    await limited(LOGIN, {"u": "heidi-secret-id", "p": "whatever password"})
    keys = [row.key for row in await RateCounter.all()]
    assert keys and not any("heidi" in k or "203.0.113" in k for k in keys)


@pytest.mark.skipif(not _redis_up(), reason="Redis on 127.0.0.1:6379 is not running")
async def test_limit_holds_across_two_processes_sharing_redis(make_client, rt):
    url = f"redis://{REDIS[0]}:{REDIS[1]}"
    user = f"redis-{uuid.uuid4().hex[:12]}"
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    one = make_client(address, rate_limit_url=url, rate_limit_login="3/minute")
    two = make_client(address, rate_limit_url=url, rate_limit_login="3/minute")
    codes = []
    for i in range(5):
        codes += await _login_codes(one if i % 2 else two, user, 1, "a wrong password")
    assert codes[:3] == ["UNAUTHENTICATED"] * 3 and codes[3:] == ["RATE_LIMITED"] * 2
    body = await one(LOGIN, {"u": user, "p": "x"})
    assert 1 <= body["errors"][0]["extensions"]["retryAfter"] <= 60


async def test_a_locked_account_opens_again_after_the_window(gql, clock):
    """Locked after 5 failures for the 900 s window (conftest settings), counted afresh after."""
    await register_member(gql, "gina")
    codes = await _login_codes(gql, "gina", 6, "a wrong password")
    assert codes == ["UNAUTHENTICATED"] * 5 + ["RATE_LIMITED"]
    clock.advance(seconds=899)
    assert await _login_codes(gql, "gina", 1) == ["RATE_LIMITED"]
    clock.advance(seconds=2)
    assert await _login_codes(gql, "gina", 2, "a wrong password") == ["UNAUTHENTICATED"] * 2
    assert await _login_codes(gql, "gina", 1) == [None]
    assert await _login_codes(gql, "gina", 5, "a wrong password") == ["UNAUTHENTICATED"] * 5
