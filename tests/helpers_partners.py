"""Shared steps for the partner tests: announce over HTTP, get a partner token over
``/oauth/token``, consent, run the real jobs, read the real ``jsonl`` directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest

from api.platform.jobs import run_all
from api.platform.runtime import Runtime
from api.service.composition import JOBS
from api.sharing import adapters
from partners.base import PartnerAdapter, PartnerEvent
from tests.conftest import error_code

ANNOUNCE = """
mutation($input: PartnerInput!) {
  announcePartner(input: $input) {
    id kind announcedAt effectiveAt fields optionalFields
    partner { id name status adapter fields optionalFields upcoming { kind effectiveAt } }
  }
}"""

CHANGE = """
mutation($id: ID!, $f: [PersonalField!]!, $o: [PersonalField!]!) {
  changePartnerFields(partnerId: $id, fields: $f, optionalFields: $o) {
    id kind announcedAt effectiveAt fields optionalFields partner { status fields optionalFields }
  }
}"""

RETIRE = """mutation($id: ID!) { retirePartner(partnerId: $id) {
  kind effectiveAt partner { status } } }"""

ISSUE = """mutation($id: ID!, $s: [String!]!) {
  issuePartnerCredentials(partnerId: $id, scopes: $s) { clientId clientSecret scopes } }"""

PURCHASE = """mutation($m: ID!, $a: String!, $c: String!, $r: String!) {
  recordPurchase(memberId: $m, amount: $a, currency: $c, reference: $r) {
    id amount currency reference at } }"""

SHARED = """query($first: Int, $after: String) {
  sharedMembers(first: $first, after: $after) {
    edges { cursor node { ref userId email fullName dateOfBirth phone address } }
    pageInfo { hasNextPage endCursor } } }"""

DISCLOSURES = "{ me { disclosures { partner fields purpose legalBasis at } } }"


async def announce(gql, admin, name: str = "ShipFast", *, purpose: str = "order_fulfillment",
                   fields: list[str] | None = None, optional: list[str] | None = None,
                   directory: Path | None = None, adapter: str = "jsonl",
                   config: Mapping[str, Any] | None = None, kind: str = "LOGISTICS") -> str:
    cfg = dict(config) if config is not None else {"directory": str(directory)}
    body = await gql(ANNOUNCE, {"input": {
        "name": name, "kind": kind, "purpose": purpose, "adapter": adapter, "config": cfg,
        "fields": fields if fields is not None else ["FULL_NAME", "ADDRESS"],
        "optionalFields": optional if optional is not None else ["PHONE"]}}, token=admin.token)
    assert "errors" not in body, body
    return body["data"]["announcePartner"]["partner"]["id"]


async def credentials(gql, admin, partner_id: str,
                      scopes: tuple[str, ...] = ("members:read", "purchases:write")
                      ) -> tuple[str, str]:
    body = await gql(ISSUE, {"id": partner_id, "s": list(scopes)}, token=admin.token)
    assert "errors" not in body, body
    data = body["data"]["issuePartnerCredentials"]
    return data["clientId"], data["clientSecret"]


async def token_response(client, client_id: str, secret: str, scope: str | None = None):
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope is not None:
        form["scope"] = scope
    return await client.post("/oauth/token", data=form)


async def partner_token(client, gql, admin, partner_id: str,
                        scopes: tuple[str, ...] = ("members:read", "purchases:write")) -> str:
    client_id, secret = await credentials(gql, admin, partner_id, scopes)
    response = await token_response(client, client_id, secret)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def policy_version(gql) -> str:
    return (await gql("{ policy { version } }"))["data"]["policy"]["version"]


async def give(gql, member, purpose: str) -> None:
    body = await gql("mutation($p: String!, $v: String!) { giveConsent(purpose: $p, "
                     "policyVersion: $v) { state } }",
                     {"p": purpose, "v": await policy_version(gql)}, token=member.token)
    assert "errors" not in body, body


async def withdraw(gql, member, purpose: str) -> None:
    body = await gql("mutation($p: String!) { withdrawConsent(purpose: $p) { state } }",
                     {"p": purpose}, token=member.token)
    assert "errors" not in body, body


async def purchase(gql, admin, member_id: str, reference: str = "order 1") -> dict[str, Any]:
    body = await gql(PURCHASE, {"m": member_id, "a": "19.90", "c": "EUR", "r": reference},
                     token=admin.token)
    assert "errors" not in body, body
    return body["data"]["recordPurchase"]


async def shared(gql, token: str, first: int = 100, after: str | None = None) -> dict[str, Any]:
    body = await gql(SHARED, {"first": first, "after": after}, token=token)
    assert "errors" not in body, body
    return body["data"]["sharedMembers"]


async def nodes(gql, token: str) -> list[dict[str, Any]]:
    return [e["node"] for e in (await shared(gql, token))["edges"]]


async def run_jobs(rt: Runtime) -> dict[str, Any]:
    """Bring partner changes into force, catch up, then deliver the outbox: the real jobs."""
    return await run_all(rt, JOBS, only=["partner_changes_in_force", "sharing_catch_up",
                                   "deliver_outbox"])


def events(directory: Path, partner_name: str) -> list[dict[str, Any]]:
    path = directory / f"{partner_name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_forbidden(body: dict[str, Any]) -> None:
    assert error_code(body) == "FORBIDDEN", body


class NarrowAdapter(PartnerAdapter):
    """A real adapter that declares it can take only names and emails."""

    name = "narrow"
    accepts = frozenset({"fullName", "email"})

    async def deliver(self, event: PartnerEvent) -> None:  # pragma: no cover - never delivered
        return None


def install_narrow_adapter(rt: Runtime, target: str = "tests.helpers_partners:NarrowAdapter") -> None:
    """Discover the installed adapters plus ``narrow`` (``target``) through the real
    entry-point path."""
    extra = EntryPoint(name="narrow", value=target, group=adapters.GROUP)
    rt.extras["partner_adapters"] = adapters.discover([*entry_points(group=adapters.GROUP), extra])


@pytest.fixture(autouse=True)
def long_sessions(rt: Runtime) -> None:
    """Member and admin access tokens (and the admin session cap) outlive the 30-day jumps of
    these tests (partner tokens keep their short lifetime); the app reads ``rt.settings`` per
    request."""
    rt.settings = replace(rt.settings, access_token_ttl=400 * 24 * 3600,
                          admin_session_max_seconds=400 * 24 * 3600)
