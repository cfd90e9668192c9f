"""Test wiring: real SQLite by default, real PostgreSQL when CONSENTRY_TEST_DATABASE_URL is set.

One database per run (PostgreSQL: a fresh pair of databases, dropped afterwards), migrated
once through the real migrations; every test starts from empty tables and a ManualClock.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from tortoise import Tortoise, connections

from api.core.clock import ManualClock
from api.core.settings import Settings
from api.platform.db import init_db, migrate
from api.platform.runtime import Runtime
from api.security.keys import KeyRing
from api.service.asgi import create_app
from api.service.composition import build_runtime

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")
PASSWORD = "correct horse battery staple 42"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_db_url(name: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("consentry")


@pytest.fixture(scope="session")
async def settings(data_dir: Path) -> AsyncIterator[Settings]:
    names: list[str] = []
    overrides: dict[str, Any] = {}
    if PG_URL:
        tag = uuid.uuid4().hex[:10]
        names = [f"consentry_test_{tag}", f"consentry_test_{tag}_vault"]
        for name in names:
            await _pg_admin(f'CREATE DATABASE "{name}"')
        overrides = {"database_url": _pg_db_url(names[0]),
                     "vault_database_url": _pg_db_url(names[1])}
    s = Settings(data_dir=data_dir, login_slow_after=3, login_lock_after=5, **overrides)
    yield s
    for name in names:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Settings]:
    await migrate(settings)
    await init_db(settings)
    yield settings
    await Tortoise.close_connections()


def _tables(app_label: str) -> list[str]:
    return [m._meta.db_table for m in Tortoise.apps[app_label].values()]


async def _empty(app_label: str, connection: str) -> None:
    conn = connections.get(connection)
    tables = _tables(app_label)
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                  + " RESTART IDENTITY CASCADE")
    else:
        # Generated keys (audit seq) restart too: tests name entries 1, 2, 3...
        await conn.execute_script("".join(f'DELETE FROM "{t}";' for t in tables)
                                  + "DELETE FROM sqlite_sequence;")


@pytest.fixture(scope="session")
def keys(settings: Settings) -> KeyRing:
    return KeyRing.load(settings)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def rt(database: Settings, keys: KeyRing, clock: ManualClock) -> Runtime:
    await _empty("models", "default")
    await _empty("vault", "vault")
    return build_runtime(database, clock, keys)


GRAPHQL_PATHS = ("fast", "strawberry")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_graphql_paths: run each test that posts GraphQL "
                            "once through the fast path and once through plain strawberry")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("graphql_path" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_graphql_paths")):
        metafunc.parametrize("graphql_path", GRAPHQL_PATHS, indirect=True)


@pytest.fixture
def graphql_path(request: pytest.FixtureRequest) -> str:
    """Which way ``/graphql`` answers: ``fast`` (schema/fastpath.py, as served) or
    ``strawberry`` (the view alone); ``@pytest.mark.both_graphql_paths`` runs both."""
    return str(getattr(request, "param", "fast"))


def graphql_endpoint(app: Any) -> Any:
    """The ``FastGraphQL`` endpoint mounted at ``/graphql``, behind any guards that wrap it."""
    from schema.fastpath import FastGraphQL

    endpoint = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/graphql")
    while not isinstance(endpoint, FastGraphQL):
        endpoint = endpoint.app  # a guard in front (api/service/http_guard.py); else fail loudly
    return endpoint


@pytest.fixture
async def client(rt: Runtime, graphql_path: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt, manage_db=False)
    if graphql_path == "strawberry":
        graphql_endpoint(app).enabled = False
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class GQL:
    """Posts GraphQL over HTTP; returns the decoded JSON body (asserting HTTP 200)."""

    client: httpx.AsyncClient

    async def __call__(self, query: str, variables: dict[str, Any] | None = None,
                       token: str | None = None, status: int = 200) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post("/graphql", json={"query": query,
                                                            "variables": variables or {}},
                                          headers=headers)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GQL:
    return GQL(client)


def error_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken expiresIn role member { id userId email } }
}"""


@dataclass
class Account:
    id: str
    user_id: str
    email: str
    token: str
    refresh_token: str


async def register_member(gql: GQL, user_id: str = "alice", **extra: Any) -> Account:
    fields = {"userId": user_id, "email": f"{user_id}@example.org",
              "fullName": f"{user_id.title()} Example", "password": PASSWORD, **extra}
    body = await gql(REGISTER, {"input": fields})
    assert "errors" not in body, body
    data = body["data"]["register"]
    return Account(data["member"]["id"], user_id, fields["email"], data["accessToken"],
                   data["refreshToken"])


@pytest.fixture
async def member(gql: GQL) -> Account:
    return await register_member(gql, "alice", phone="+44 20 7946 0000",
                                 address="1 Clinic Road, Leeds", dateOfBirth="1990-04-01")


@pytest.fixture
async def other_member(gql: GQL) -> Account:
    return await register_member(gql, "bob")


LOGIN = """
mutation($u: String!, $p: String!, $otp: String) {
  login(userId: $u, password: $p, otp: $otp) { accessToken refreshToken role member { id } }
}"""


async def create_admin(rt: Runtime, user_id: str = "root-admin") -> str:
    from api.members import auth

    uri = await auth.create_admin(rt, user_id=user_id, email=f"{user_id}@clinic.example",
                                  password=PASSWORD)
    return pyotp.parse_uri(uri).secret


@pytest.fixture
async def admin(rt: Runtime, gql: GQL, clock: ManualClock) -> Account:
    secret = await create_admin(rt)
    code = pyotp.TOTP(secret).at(clock.now())
    body = await gql(LOGIN, {"u": "root-admin", "p": PASSWORD, "otp": code})
    assert "errors" not in body, body
    data = body["data"]["login"]
    return Account("", "root-admin", "root-admin@clinic.example", data["accessToken"],
                   data["refreshToken"])
