"""Fuzzing the served GraphQL schema with schemathesis, against a real ``consentry serve``.

schemathesis reads the schema by introspection from the running server and generates valid
queries and mutations (hypothesis-graphql) for every operation; each case is sent as one of
anonymous, member, partner or admin. Every answer must be a JSON GraphQL response without a 5xx,
every error must carry a contract code other than INTERNAL, and no message may name a Python
exception or a database driver. The server is a subprocess with its own data directory (on
PostgreSQL runs: its own fresh databases), so the fuzz cannot disturb other tests.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
import schemathesis
from graphql.language import (
    BooleanValueNode,
    IntValueNode,
    NameNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import PASSWORD
from tests.helpers_serve import CONSENTRY, serve

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")
TARGET_CASES = 2000
# Requests overlap (several in flight): at 8 in flight this fuzz found a deadlock on PostgreSQL
# (two audit appends in one transaction; fixed in cf41132). CONSENTRY_FUZZ_CONCURRENCY overrides.
CONCURRENCY = int(os.environ.get("CONSENTRY_FUZZ_CONCURRENCY", "4"))
CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT",
         "RATE_LIMITED"}
LEAK = re.compile(
    r"Traceback|File \"|\b(?!GraphQL)[A-Z][A-Za-z]*(Error|Exception)\b|asyncpg|sqlite|tortoise|"
    r"psycopg|NoneType|object has no attribute|unsupported operand|not subscriptable")



async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _string(value: str) -> StringValueNode:
    return StringValueNode(value=value)


_json_leaf = st.one_of(st.text(max_size=20).map(_string),
                       st.integers(-10**6, 10**6).map(lambda i: IntValueNode(value=str(i))),
                       st.booleans().map(lambda b: BooleanValueNode(value=b)))
_json = st.one_of(_json_leaf, st.dictionaries(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), _json_leaf, max_size=4
).map(lambda d: ObjectValueNode(fields=tuple(
    ObjectFieldNode(name=NameNode(value=k), value=v) for k, v in d.items()))))
schemathesis.graphql.scalar("DateTime", st.one_of(
    st.datetimes().map(lambda d: _string(d.isoformat() + "+00:00")), st.text(max_size=30).map(_string)))
schemathesis.graphql.scalar("Date", st.one_of(
    st.dates().map(lambda d: _string(d.isoformat())), st.text(max_size=12).map(_string)))
schemathesis.graphql.scalar("JSON", _json)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATA_DIR"] = str(data_dir)
    names: list[str] = []
    if PG_URL:
        tag = uuid.uuid4().hex[:10]
        names = [f"consentry_fuzz_{tag}", f"consentry_fuzz_{tag}_vault"]
        for name in names:
            asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
        base = PG_URL.rpartition("/")[0]
        env["CONSENTRY_DATABASE_URL"] = f"{base}/{names[0]}"
        env["CONSENTRY_VAULT_DATABASE_URL"] = f"{base}/{names[1]}"
    try:
        with serve(env, data_dir / "serve.log") as (url, _):
            yield url, env
    finally:
        for name in names:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _gql(client: httpx.Client, query: str, variables: dict | None = None,
         token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json={"query": query, "variables": variables or {}},
                           headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _tokens(client: httpx.Client, env: dict[str, str]) -> dict[str, str | None]:
    member = _gql(client, """mutation($i: RegisterInput!) { register(input: $i) { accessToken } }""",
                  {"i": {"userId": "fuzz-member", "email": "fuzz@example.org",
                         "fullName": "Fuzz Member", "password": PASSWORD,
                         "phone": "+44 20 7946 0123"}})["register"]["accessToken"]
    done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", "fuzz-admin", "--email",
                           "fuzz-admin@clinic.example"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    secret = pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret
    admin = _gql(client, "mutation($u: String!, $p: String!, $o: String) { login(userId: $u, "
                 "password: $p, otp: $o) { accessToken } }",
                 {"u": "fuzz-admin", "p": PASSWORD, "o": pyotp.TOTP(secret).now()}
                 )["login"]["accessToken"]
    partner = _gql(client, """mutation($c: JSON) { announcePartner(input: {name: "FuzzCo",
        kind: OTHER, purpose: "order_fulfillment", adapter: "jsonl", config: $c,
        fields: [FULL_NAME], optionalFields: [PHONE]}) { partner { id } } }""",
                   {"c": {"directory": env["CONSENTRY_DATA_DIR"]}},
                   token=admin)["announcePartner"]["partner"]["id"]
    creds = _gql(client, "mutation($p: ID!) { issuePartnerCredentials(partnerId: $p, scopes: "
                 '["members:read", "purchases:write"]) { clientId clientSecret } }',
                 {"p": partner}, token=admin)["issuePartnerCredentials"]
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": creds["clientId"],
        "client_secret": creds["clientSecret"]})
    assert response.status_code == 200, response.text
    return {"anonymous": None, "member": member, "admin": admin,
            "partner": response.json()["access_token"]}


def _problems(response: httpx.Response) -> list[str]:
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}"]
    try:
        body = response.json()
    except ValueError:
        return [f"not JSON (HTTP {response.status_code}): {response.text[:100]}"]
    out = []
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in CODES:
            out.append(f"code {code!r}: {error.get('message')}")
        if LEAK.search(error.get("message", "")):
            out.append(f"leaky message: {error['message']}")
    return out


def _generate(operations: list, per_operation: int) -> list[tuple[str, str]]:
    """Draw the cases first (schemathesis/hypothesis), so sending them can overlap."""
    cases: list[tuple[str, str]] = []
    for operation in operations:
        @settings(max_examples=per_operation, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def draw(case: Any) -> None:
            cases.append((operation.label, case.body))

        draw()
    return cases


async def _send(url: str, tokens: dict[str, str | None], cases: list[tuple[str, str]],
                concurrency: int = CONCURRENCY) -> list[str]:
    failures: list[str] = []
    roles = list(tokens.items())
    queue = list(enumerate(cases))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i, (label, query) = queue.pop()
            role, token = roles[i % len(roles)]
            headers = {"authorization": f"Bearer {token}"} if token else {}
            try:
                response = await client.post("/graphql", json={"query": query}, headers=headers)
            except httpx.TimeoutException:
                failures.append(f"{label} as {role}: no answer within 30 s\n{query}")
                continue
            failures.extend(f"{label} as {role}: {p}\n{query}" for p in _problems(response))

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return failures


def test_fuzz_every_operation_as_every_role(server):
    url, env = server
    schema = schemathesis.graphql.from_url(f"{url}/graphql")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    started = time.monotonic()
    cases = _generate(operations, TARGET_CASES // len(operations) + 8)
    generated = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        tokens = _tokens(client, env)
    failures = asyncio.run(_send(url, tokens, cases))
    print(f"fuzz: {len(cases)} cases over {len(operations)} operations; generated in "
          f"{generated - started:.1f}s, sent in {time.monotonic() - generated:.1f}s")
    assert failures == [], "\n\n".join(failures[:10]) + f"\n({len(failures)} problems)"
    assert len(cases) >= TARGET_CASES
