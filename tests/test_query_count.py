"""SQL queries per GraphQL request do not grow with the page size (no N+1)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from tortoise.backends.base.client import BaseDBAsyncClient

from bench.seed import bulk_members, seed_partner

_METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many",
            "execute_script")
_inside = contextvars.ContextVar("inside_query", default=False)

MEMBERS = """query($first: Int) { members(first: $first) {
  edges { cursor node { id userId email fullName phone address dateOfBirth status } }
  pageInfo { hasNextPage endCursor } } }"""
SHARED = """query($first: Int) { sharedMembers(first: $first) {
  edges { cursor node { ref userId email fullName dateOfBirth phone address } }
  pageInfo { hasNextPage endCursor } } }"""


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@contextmanager
def count_queries() -> Iterator[list[str]]:
    """Record every SQL statement sent through any tortoise client (outermost calls only)."""
    seen: list[str] = []
    patched: list[tuple[type, str, object]] = []

    def wrap(original):
        async def counted(self, query, *args, **kwargs):
            if _inside.get():
                return await original(self, query, *args, **kwargs)
            seen.append(query)
            token = _inside.set(True)
            try:
                return await original(self, query, *args, **kwargs)
            finally:
                _inside.reset(token)
        return counted

    for cls in {BaseDBAsyncClient, *_subclasses(BaseDBAsyncClient)}:
        for name in _METHODS:
            if name in cls.__dict__:
                patched.append((cls, name, cls.__dict__[name]))
                setattr(cls, name, wrap(cls.__dict__[name]))
    try:
        yield seen
    finally:
        for cls, name, original in reversed(patched):
            setattr(cls, name, original)


async def _count(gql, query: str, first: int, token: str) -> int:
    with count_queries() as seen:
        body = await gql(query, {"first": first}, token=token)
    assert "errors" not in body, body
    edges = next(iter(body["data"].values()))["edges"]
    assert len(edges) == first
    return len(seen)


async def test_members_page_query_count_is_constant(rt, gql, admin):
    await bulk_members(rt, 120)
    await _count(gql, MEMBERS, 5, admin.token)  # warm-up: lazily loaded registries
    small = await _count(gql, MEMBERS, 10, admin.token)
    large = await _count(gql, MEMBERS, 100, admin.token)
    print(f"queries: first=10 -> {small}, first=100 -> {large}")
    assert small == large, (small, large)


async def test_shared_members_page_query_count_is_constant(rt, gql, client):
    await bulk_members(rt, 120, has_purchase=True)
    partner = await seed_partner(rt)
    answer = await client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": partner["client_id"],
        "client_secret": partner["client_secret"], "scope": "members:read"})
    token = answer.json()["access_token"]
    await _count(gql, SHARED, 5, token)
    small = await _count(gql, SHARED, 10, token)
    large = await _count(gql, SHARED, 100, token)
    print(f"queries: first=10 -> {small}, first=100 -> {large}")
    assert small == large, (small, large)


async def test_counter_sees_queries(rt, gql, member):
    with count_queries() as seen:
        await gql("{ me { id consents { purpose } } }", token=member.token)
    assert seen  # the instrument itself works
