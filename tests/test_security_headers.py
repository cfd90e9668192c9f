"""Transport hardening: headers, CORS, trusted hosts, body cap, GraphQL limits, production mode.

Every refusal is a JSON body with ``extensions.code`` (never plain text, never a 5xx).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from schema import LIMITS
from tests.conftest import LOGIN, PASSWORD, error_code, register_member
from tests.helpers_hardening import client_for, runtime_with, write_production_keys

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@pytest.fixture
async def prod(rt, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    runtime = runtime_with(rt, env="production", **write_production_keys(tmp_path / "keys"))
    async with client_for(runtime) as client:
        yield client


def _assert_json_refusal(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_security_headers_on_every_kind_of_response(client):
    responses = [
        await client.get("/healthz"),
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.post("/graphql", json={"query": "{ nope }"}),
        await client.get("/no-such-page"),
        await client.get("/.well-known/jwks.json"),
        await client.post("/graphql", content=b"{", headers={"content-type": "application/json"}),
    ]
    for response in responses:
        for name, value in HEADERS.items():
            if name == "cache-control" and response.url.path.endswith("jwks.json"):
                continue  # public keys are meant to be cached
            assert response.headers.get(name) == value, (response.url, name)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers  # development: plain HTTP
        assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


async def test_hsts_in_production(prod):
    response = await prod.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_login_sets_no_cookie(gql, client, member):
    response = await client.post("/graphql", json={"query": LOGIN, "variables": {
        "u": "alice", "p": PASSWORD}})
    assert "errors" not in response.json()
    assert "set-cookie" not in response.headers


async def test_cors_preflight_only_for_configured_origins(rt):
    runtime = runtime_with(rt, cors_origins=("https://app.clinic.example",))
    async with client_for(runtime) as client:
        preflight = {"access-control-request-method": "POST",
                     "access-control-request-headers": "authorization, content-type"}
        ok = await client.options("/graphql", headers={"origin": "https://app.clinic.example",
                                                       **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.clinic.example"
        assert "access-control-allow-credentials" not in ok.headers
        bad = await client.options("/graphql", headers={"origin": "https://evil.example",
                                                        **preflight})
        assert bad.status_code == 400
        assert "access-control-allow-origin" not in bad.headers
        # A simple cross-origin request from elsewhere gets no CORS grant either.
        simple = await client.post("/graphql", json={"query": "{ __typename }"},
                                   headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers
        # Look-alike origins are not the configured one.
        for origin in ("https://app.clinic.example.evil.example", "http://app.clinic.example",
                       "null"):
            response = await client.options("/graphql", headers={"origin": origin, **preflight})
            assert "access-control-allow-origin" not in response.headers, origin


async def test_no_cors_grant_when_no_origin_is_configured(client):
    response = await client.options("/graphql", headers={
        "origin": "https://anyone.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in response.headers


async def test_untrusted_host_is_refused(rt):
    runtime = runtime_with(rt, trusted_hosts=("api.clinic.example",))
    async with client_for(runtime, base_url="http://api.clinic.example") as client:
        assert (await client.get("/healthz")).status_code == 200
        bad = await client.get("/healthz", headers={"host": "evil.example"})
        assert bad.status_code == 400
        bad = await client.post("/graphql", json={"query": "{ __typename }"},
                                headers={"host": "api.clinic.example.evil.example"})
        assert bad.status_code == 400


async def test_body_over_the_limit_is_413_with_a_code(client, rt):
    big = {"query": "{ __typename }", "variables": {"x": "a" * (rt.settings.max_body_bytes + 10)}}
    _assert_json_refusal(await client.post("/graphql", json=big), 413)


async def test_streamed_body_over_the_limit_is_413(client, rt):
    """No Content-Length (chunked): the cap is enforced while reading."""
    chunk = b"a" * 65536

    async def body():
        yield b'{"query": "{ __typename }", "variables": {"x": "'
        for _ in range(rt.settings.max_body_bytes // len(chunk) + 2):
            yield chunk
        yield b'"}}'

    response = await client.post("/graphql", content=body(),
                                 headers={"content-type": "application/json"})
    _assert_json_refusal(response, 413)


async def test_body_over_the_limit_on_the_token_endpoint_is_413(client, rt):
    response = await client.post("/oauth/token", content=b"a" * (rt.settings.max_body_bytes + 1),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    _assert_json_refusal(response, 413)


@pytest.mark.parametrize("kwargs", [
    {"content": b"{not json", "headers": {"content-type": "application/json"}},
    {"content": b"", "headers": {"content-type": "application/json"}},
    {"json": {"variables": {}}},
    {"json": [{"query": "{ __typename }"}, {"query": "{ __typename }"}]},
    {"json": {"query": 5}},
    {"json": {"query": "{ __typename }", "variables": [1, 2]}},
    {"content": b"{ __typename }", "headers": {"content-type": "text/plain"}},
    {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
], ids=["malformed-json", "empty", "missing-query", "batch", "query-not-string",
        "variables-not-object", "text-plain", "not-utf8"])
async def test_malformed_requests_get_a_json_error_with_code(client, kwargs):
    _assert_json_refusal(await client.post("/graphql", **kwargs), 400)


async def test_mutation_over_get_is_refused_as_json(client):
    response = await client.get("/graphql", params={
        "query": 'mutation { logout(refreshToken: "x") }'})
    assert response.status_code in (400, 405)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def _nested(depth: int) -> str:
    """A query nested ``depth`` levels below its root field (the graphql-depth-limit measure),
    built on the Partner <-> PartnerChange cycle."""
    names = (["outsourcingPartners"] + ["upcoming", "partner"] * depth)[:depth]
    query = "id"
    for name in reversed(names):
        query = f"{name} {{ {query} }}"
    return "{ " + query + " }"


async def test_query_depth_is_limited(gql):
    assert "errors" not in await gql(_nested(LIMITS["depth"]))
    body = await gql(_nested(LIMITS["depth"] + 1))
    assert error_code(body) == "BAD_USER_INPUT" and body.get("data") is None
    assert "depth" in body["errors"][0]["message"]


async def test_aliases_are_limited(gql):
    at_limit = " ".join(f"a{i}: __typename" for i in range(LIMITS["aliases"]))
    assert "errors" not in await gql("{ " + at_limit + " }")
    over = " ".join(f"a{i}: __typename" for i in range(LIMITS["aliases"] + 1))
    assert error_code(await gql("{ " + over + " }")) == "BAD_USER_INPUT"


async def test_tokens_are_limited(gql):
    body = await gql("{ " + "__typename " * LIMITS["tokens"] + "}")
    assert error_code(body) == "BAD_USER_INPUT"
    assert "token" in body["errors"][0]["message"].lower()


@pytest.mark.parametrize("query", ["{ __typename", "{ me { id } } garbage {", '{ a(x: "\\u12") }',
                                   "", "   ", "#only a comment", "{ __typename }}" * 3])
async def test_syntax_errors_carry_a_code(gql, query):
    body = await gql(query) if query else await gql(query, status=400)
    assert error_code(body) == "BAD_USER_INPUT", body


async def test_directives_are_limited(gql):
    at_limit = "__typename @include(if: true) " * LIMITS["directives"]
    assert "errors" not in await gql("{ " + at_limit + "}")
    body = await gql("{ " + at_limit + "__typename @skip(if: false) }")
    assert error_code(body) == "BAD_USER_INPUT"
    assert "directives" in body["errors"][0]["message"]


async def test_page_size_is_capped(gql, admin):
    query = "query($n: Int) { members(first: $n) { edges { cursor } } }"
    for first in (LIMITS["page"] + 1, 10**6, 0, -1):
        assert error_code(await gql(query, {"n": first}, token=admin.token)) == "BAD_USER_INPUT"
    assert "errors" not in await gql(query, {"n": LIMITS["page"]}, token=admin.token)


async def test_introspection_and_graphiql_in_development(client):
    body = (await client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})).json()
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    ide = await client.get("/graphql", headers={"accept": "text/html"})
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()


async def test_introspection_refused_and_graphiql_absent_in_production(prod):
    for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Member") { name } }',
                  "query { a: __schema { types { name } } }"):
        body = (await prod.post("/graphql", json={"query": query})).json()
        assert body.get("data") is None and error_code(body) == "BAD_USER_INPUT", body
    ide = await prod.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in ide.text.lower()
    assert not ide.headers.get("content-type", "").startswith("text/html")
    # Typename stays available: clients rely on it.
    body = (await prod.post("/graphql", json={"query": "{ __typename }"})).json()
    assert body["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("query", [
    "{ mee { id } }",
    "{ outsourcingPartners { nam } }",
    "{ members(statu: ACTIVE) { edges { cursor } } }",
    "{ members(status: ACTIV) { edges { cursor } } }",
    'mutation { reportInaccuracy(fields: [EMAL]) { id } }',
])
async def test_suggestions_hidden_in_production(prod, client, query):
    body = (await prod.post("/graphql", json={"query": query})).json()
    assert error_code(body) == "BAD_USER_INPUT"
    assert all("did you mean" not in e["message"].lower() for e in body["errors"]), body
    dev = (await client.post("/graphql", json={"query": query})).json()
    assert any("did you mean" in e["message"].lower() for e in dev["errors"]), dev


async def test_production_errors_do_not_leak_internals(prod, rt):
    """A bad token and bad input still answer with codes and client-facing messages only."""
    response = await prod.post("/graphql", json={"query": "{ me { id } }"},
                               headers={"authorization": "Bearer a.b.c"})
    assert error_code(response.json()) == "UNAUTHENTICATED"
    assert "Traceback" not in response.text and "jwt" not in response.text.lower()


async def test_token_with_development_keys_is_refused_in_production(prod, gql):
    account = await register_member(gql, "ivan")
    response = await prod.post("/graphql", json={"query": "{ me { id } }"},
                               headers={"authorization": f"Bearer {account.token}"})
    assert error_code(response.json()) == "UNAUTHENTICATED"
