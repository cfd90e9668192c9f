"""The fast GraphQL path answers exactly as strawberry's view; the caches actually hit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import strawberry
from strawberry.asgi import GraphQL
from strawberry.extensions import MaskErrors
from strawberry.extensions.validation_cache import _get_validate_cache

from api.service.asgi import ConsentryGraphQL
from schema import build_schema
from schema.fastpath import MIRRORED, FastGraphQL, extension_classes
from tests.conftest import error_code, graphql_endpoint, register_member

ME = "{ me { id userId email fullName phone address dateOfBirth status consents { purpose state } } }"
MEMBERS = """query Page($first: Int, $after: String) { members(first: $first, after: $after) {
  edges { cursor node { id userId email fullName status } } pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
async def view_client(rt) -> AsyncIterator[httpx.AsyncClient]:
    """strawberry's view alone (no fast path), for comparison."""
    transport = httpx.ASGITransport(app=ConsentryGraphQL(rt, graphql_ide=None),
                                    client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _fast(client: httpx.AsyncClient) -> FastGraphQL:
    return graphql_endpoint(client._transport.app)  # type: ignore[attr-defined]


def _names(classes: frozenset[type]) -> set[str]:
    return {c.__name__ for c in classes}


@pytest.mark.parametrize(("production", "expected"), [
    (False, {"ErrorCodes", "ParserCache", "ValidationCache", "AddValidationRules",
             "MaxTokensLimiter"}),
    (True, {"ErrorCodes", "ParserCache", "ValidationCache", "AddValidationRules",
            "MaxTokensLimiter", "HideSuggestions"}),
])
def test_the_fast_path_mirrors_every_schema_extension(production, expected):
    """A new extension in build_schema fails here until fastpath.py does what it does (and
    lists it in MIRRORED); a stale entry in MIRRORED fails too."""
    served = extension_classes(build_schema(production=production))
    assert _names(served - MIRRORED) == set(), "extensions the fast path does not mirror"
    assert _names(served) == expected
    both = served | extension_classes(build_schema(production=not production))
    assert _names(MIRRORED - both) == set(), "MIRRORED lists extensions no schema uses"


def test_an_unmirrored_extension_turns_the_fast_path_off(rt):
    served = build_schema()  # query and mutation: the registered trusted documents need both
    view = GraphQL(strawberry.Schema(query=served.query, mutation=served.mutation,
                                     extensions=[MaskErrors]))
    assert FastGraphQL(view, rt).enabled is False
    assert FastGraphQL(ConsentryGraphQL(rt), rt).enabled is True


async def test_the_strawberry_route_bypasses_the_fast_path(client, gql, member):
    """What ``graphql_path=strawberry`` (tests marked both_graphql_paths) really does."""
    fast = _fast(client)
    fast.enabled = False
    assert (await gql(ME, token=member.token))["data"]["me"]["userId"] == "alice"
    assert ME not in fast._documents
    fast.enabled = True
    assert (await gql(ME, token=member.token))["data"]["me"]["userId"] == "alice"
    assert fast._documents[ME] is not None


async def _both(client, view_client, query, variables=None, token=None, name=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    payload = {"query": query, "variables": variables or {}}
    if name:
        payload["operationName"] = name
    fast = await client.post("/graphql", json=payload, headers=headers)
    slow = await view_client.post("/", json=payload, headers=headers)
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.json() == slow.json()
    return fast.json()


async def test_fast_path_answers_like_the_view(client, view_client, member, other_member, admin):
    cases = [
        (ME, None, member.token, None),
        (ME, None, None, None),  # UNAUTHENTICATED
        (ME, None, "not-a-jwt", None),  # bad token
        (ME, None, admin.token, None),  # FORBIDDEN
        (MEMBERS, {"first": 1}, admin.token, "Page"),
        (MEMBERS, {"first": 100}, admin.token, None),
        (MEMBERS, {"first": 1000}, admin.token, None),  # BAD_USER_INPUT from the resolver
        (MEMBERS, {"first": "x"}, admin.token, None),  # variable coercion
        (MEMBERS, {"first": 1, "after": "garbage"}, admin.token, None),
        (MEMBERS, {"first": 5}, member.token, None),  # FORBIDDEN
        ("{ me { id nope } }", None, member.token, None),  # validation error: view answers both
        ("{ me { id ", None, member.token, None),  # syntax error
    ]
    for query, variables, token, name in cases:
        await _both(client, view_client, query, variables, token, name)
    fast = _fast(client)
    assert fast._documents[ME] is not None and fast._documents[MEMBERS] is not None
    assert fast._documents["{ me { id nope } }"] is None
    # what answered above was the plan compiled for each ad-hoc document when first seen
    assert fast._documents[ME].plan is not None and fast._documents[MEMBERS].plan is not None
    # the observer's label, derived once per document and operation name
    assert fast._documents[ME].memo == {None: "me"}
    assert fast._documents[MEMBERS].memo == {"Page": "members", None: "members"}


async def test_the_first_authorization_header_decides_as_in_the_view(
        client, view_client, member, other_member):
    """The context reads the raw headers itself (schema/context.py): as starlette's
    ``Headers.get``, the first of two ``Authorization`` headers is the caller."""
    for tokens in ((member.token, other_member.token), (other_member.token, member.token),
                   ("not-a-jwt", member.token)):
        headers = [("authorization", f"Bearer {t}") for t in tokens]
        payload = {"query": ME}
        fast = await client.post("/graphql", json=payload, headers=headers)
        slow = await view_client.post("/", json=payload, headers=headers)
        assert fast.json() == slow.json()
        if tokens[0] == member.token:
            assert fast.json()["data"]["me"]["userId"] == "alice"


async def test_fast_path_codes_match_the_contract(gql, member, admin):
    assert error_code(await gql(ME)) == "UNAUTHENTICATED"
    assert error_code(await gql(ME, token=admin.token)) == "FORBIDDEN"
    assert error_code(await gql(MEMBERS, {"first": 0}, token=admin.token)) == "BAD_USER_INPUT"
    body = await gql(ME, token=member.token)
    assert body["data"]["me"]["userId"] == "alice"


async def test_cached_token_still_expires(gql, clock, member):
    assert "errors" not in await gql(ME, token=member.token)  # verified and cached
    clock.advance(hours=2)
    body = await gql(ME, token=member.token)
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "token expired"


async def test_validation_cache_hits(view_client, member):
    cache = _get_validate_cache(256)
    await view_client.post("/", json={"query": ME}, headers={"authorization": f"Bearer {member.token}"})
    before = cache.cache_info().hits
    for _ in range(3):
        await view_client.post("/", json={"query": ME},
                               headers={"authorization": f"Bearer {member.token}"})
    assert cache.cache_info().hits >= before + 3


async def test_other_members_are_not_mixed_up(gql, member, other_member):
    """The token cache is keyed by the full token: two members, two answers."""
    first = await gql("{ me { userId } }", token=member.token)
    second = await gql("{ me { userId } }", token=other_member.token)
    assert first["data"]["me"]["userId"] == "alice"
    assert second["data"]["me"]["userId"] == "bob"
    again = await register_member(gql, "carol")
    assert (await gql("{ me { userId } }", token=again.token))["data"]["me"]["userId"] == "carol"
