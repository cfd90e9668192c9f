"""Attack: a destroyed member's access token keeps acting (Security round 2, item 7).

As found: after ``withdrawMembership`` answered ``destroyed: true``, the same access token still
set cookie choices (a row linked to the destroyed member id) and opened an erasure request that
no admin could ever close (NOT_FOUND). Access tokens are stateless and cached once verified, so
nothing in the token itself says the member is gone.

Run against real ``consentry serve`` processes sharing one database: the process that destroyed
the member refuses the token at once; a second process (its own token cache, warmed before the
withdrawal) must not write anything for the member either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.conftest import PASSWORD
from tests.helpers_serve import CONSENTRY, fresh_store, serve

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken member { id } } }"
WITHDRAW = "mutation($p: String!) { withdrawMembership(password: $p) { destroyed } }"
ME = "{ me { id userId } }"
COOKIES = ('mutation { setCookiePreferences(deviceId: "attacker-device", analytics: true, '
           "personalization: true, marketing: true) { necessary } }")
ERASURE = "mutation { requestErasure { id status } }"
# Every other member operation, read or write: none may answer for a destroyed member.
OTHERS = {
    "updateProfile": 'mutation { updateProfile(input: {fullName: "Ghost"}) { id } }',
    "giveConsent": 'mutation { giveConsent(purpose: "marketing", policyVersion: "1.0") { state } }',
    "withdrawConsent": 'mutation { withdrawConsent(purpose: "marketing") { state } }',
    "exportMyData": "mutation { exportMyData { format } }",
    "reportInaccuracy": "mutation { reportInaccuracy(fields: [FULL_NAME]) { id } }",
    "withdrawMembership": f'mutation {{ withdrawMembership(password: "{PASSWORD}") '
                          "{ destroyed } }",
}
OPEN_REQUESTS = "{ dataRequests(status: OPEN) { id kind } }"


@pytest.fixture
def shared_store(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a deployment: one data directory and database for every process."""
    with fresh_store(tmp_path, "ghost") as env:
        yield env


def _count(env: dict[str, str], sql: str) -> int:
    """Read the shared main store directly (the API has no query for a device's choices)."""
    if not PG_URL:
        import sqlite3

        with contextlib.closing(sqlite3.connect(Path(env["CONSENTRY_DATA_DIR"]) /
                                                "consentry.sqlite3")) as conn:
            return int(conn.execute(sql).fetchone()[0])

    async def count() -> int:
        import asyncpg

        url = env["CONSENTRY_DATABASE_URL"].replace("postgres://", "postgresql://", 1)
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()
    return asyncio.run(count())


def _post(client: httpx.Client, query: str, variables: dict[str, Any] | None = None,
          token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json={"query": query, "variables": variables or {}},
                           headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


def _admin_token(client: httpx.Client, env: dict[str, str]) -> str:
    done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", "ghost-admin", "--email",
                           "ghost-admin@clinic.example"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    secret = pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret
    body = _post(client, "mutation($u: String!, $p: String!, $o: String) { login(userId: $u, "
                 "password: $p, otp: $o) { accessToken } }",
                 {"u": "ghost-admin", "p": PASSWORD, "o": pyotp.TOTP(secret).now()})
    assert "errors" not in body, body
    return str(body["data"]["login"]["accessToken"])


def test_a_destroyed_members_token_is_refused_everywhere(shared_store, tmp_path):
    env = shared_store
    with serve(env, tmp_path / "a.log") as (url_a, _), \
            serve(env, tmp_path / "b.log") as (url_b, _), \
            httpx.Client(base_url=url_a, timeout=30) as a, \
            httpx.Client(base_url=url_b, timeout=30) as b:
        body = _post(a, REGISTER, {"i": {"userId": "ghost", "email": "ghost@example.org",
                                         "fullName": "Ghost Member", "password": PASSWORD}})
        assert "errors" not in body, body
        token = body["data"]["register"]["accessToken"]
        # Both processes verify (and cache) the token while the member exists.
        for server in (a, b):
            assert _post(server, ME, token=token)["data"]["me"]["userId"] == "ghost"

        withdrawn = _post(a, WITHDRAW, {"p": PASSWORD}, token=token)
        assert withdrawn["data"] == {"withdrawMembership": {"destroyed": True}}, withdrawn

        problems: list[str] = []

        def refused(server: httpx.Client, name: str, query: str, codes: tuple[str, ...]) -> None:
            answer = _post(server, query, token=token)
            if _code(answer) not in codes or (answer.get("data") or {}).get(name) is not None:
                problems.append(f"{name} on {'A' if server is a else 'B'}: {answer}")

        # The process that destroyed the member: the token is refused at once, for everything.
        for name, query in {"setCookiePreferences": COOKIES, "requestErasure": ERASURE,
                            "me": ME, **OTHERS}.items():
            refused(a, name, query, ("UNAUTHENTICATED",))
        # Another process, whose cache still holds the verified token: nothing is written.
        for name, query in {"setCookiePreferences": COOKIES, "requestErasure": ERASURE}.items():
            refused(b, name, query, ("UNAUTHENTICATED",))
        for name, query in {"me": ME, **OTHERS}.items():
            refused(b, name, query, ("UNAUTHENTICATED", "NOT_FOUND"))
        assert problems == [], "\n".join(problems)

        # No cookie choice was recorded for the token's device, linked to a member or not, and
        # no erasure request was left open that no admin could close.
        assert _count(env, "SELECT count(*) FROM cookie_choices "
                           "WHERE device_id = 'attacker-device'") == 0
        admin = _admin_token(a, env)
        assert _post(a, OPEN_REQUESTS, token=admin) == {"data": {"dataRequests": []}}


# -- the same guarantees in process, with the injected clock ------------------------------------

@pytest.mark.both_graphql_paths
async def test_a_destruction_by_another_process_is_seen_within_the_ttl(rt, gql, clock, member):
    """A second runtime stands for another process: its destruction does not reach this
    process's cache, so reads answer NOT_FOUND until the cached answer is 30 s old, and the
    token is refused after that; writes are refused at once by the services."""
    from api.rights import erasure
    from api.service.composition import build_runtime
    from tests.conftest import error_code

    assert (await gql(ME, token=member.token))["data"]["me"]["userId"] == "alice"
    other = build_runtime(rt.settings, clock, rt.keys)
    await erasure.destroy(other, member.id, actor="job:retention")
    assert error_code(await gql(ME, token=member.token)) == "NOT_FOUND"
    assert error_code(await gql(COOKIES, token=member.token)) == "UNAUTHENTICATED"
    assert error_code(await gql(ERASURE, token=member.token)) == "UNAUTHENTICATED"
    clock.advance(seconds=31)
    body = await gql(ME, token=member.token)
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "this membership no longer exists"


@pytest.mark.both_graphql_paths
async def test_the_check_costs_one_query_per_member_and_ttl(gql, clock, member):
    from tests.test_query_count import count_queries

    with count_queries() as first:
        await gql(ME, token=member.token)
    with count_queries() as second:
        await gql(ME, token=member.token)
    clock.advance(seconds=31)
    with count_queries() as later:
        await gql(ME, token=member.token)
    # The first request also loads the ended-sessions view (api/members/revocation.py), once
    # per half second of the runtime's clock.
    assert len(first) - len(second) == 2
    assert len(later) == len(first)
