"""Attack: the access token of an ended session keeps acting on another API process.

As found: ``logout`` (and every other way a session ends) revoked the refresh tokens only; the
access token, stateless and cached once verified, went on answering for up to 15 minutes on
every process. Run against two real ``consentry serve`` processes sharing one PostgreSQL
database: a session ended through one process is refused by the other within one second.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.helpers_serve import serve

PG_URL = (os.environ.get("CONSENTRY_TEST_DATABASE_URL")
          or "postgres://postgres@127.0.0.1:5432/test")

REGISTER = """mutation($i: RegisterInput!) {
  register(input: $i) { accessToken refreshToken member { id } } }"""
LOGIN = """mutation($u: String!, $p: String!) {
  login(userId: $u, password: $p) { accessToken refreshToken } }"""
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
ME = "{ me { id } }"


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def shared_pg(tmp_path: Path) -> Iterator[dict[str, str]]:
    """One deployment: a data directory (keys) and a PostgreSQL database for both processes."""
    tag = uuid.uuid4().hex[:10]
    names = [f"consentry_revoke_{tag}", f"consentry_revoke_{tag}_vault"]
    try:
        for name in names:
            asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except OSError:
        pytest.skip("PostgreSQL is not reachable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    base = PG_URL.rpartition("/")[0]
    env.update(CONSENTRY_DATA_DIR=str(tmp_path / "data"),
               CONSENTRY_DATABASE_URL=f"{base}/{names[0]}",
               CONSENTRY_VAULT_DATABASE_URL=f"{base}/{names[1]}")
    try:
        yield env
    finally:
        for name in names:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _post(url: str, query: str, variables: dict[str, Any] | None = None,
          token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


def test_an_ended_session_is_refused_by_another_process_within_one_second(shared_pg, tmp_path):
    with serve(shared_pg, tmp_path / "a.log") as (a, _), \
            serve(shared_pg, tmp_path / "b.log") as (b, _):
        first = _post(a, REGISTER, {"i": {"userId": "alice", "email": "alice@example.org",
                                          "fullName": "Alice Example", "password": PASSWORD}})
        first = first["data"]["register"]
        second = _post(a, LOGIN, {"u": "alice", "p": PASSWORD})["data"]["login"]
        for token in (first["accessToken"], second["accessToken"]):
            assert _code(_post(b, ME, token=token)) is None  # B verified and cached both

        assert _post(a, LOGOUT, {"t": first["refreshToken"]})["data"] == {"logout": True}
        time.sleep(1.0)
        assert _code(_post(b, ME, token=first["accessToken"])) == "UNAUTHENTICATED"
        assert _code(_post(a, ME, token=first["accessToken"])) == "UNAUTHENTICATED"
        assert _code(_post(b, ME, token=second["accessToken"])) is None  # the other goes on

        everywhere = _post(b, "mutation { signOutEverywhere }", token=second["accessToken"])
        assert everywhere["data"] == {"signOutEverywhere": True}
        time.sleep(1.0)
        assert _code(_post(a, ME, token=second["accessToken"])) == "UNAUTHENTICATED"
