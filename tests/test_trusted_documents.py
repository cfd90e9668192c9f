"""Trusted documents: registered operations sent by hash (Apollo / graphql-codegen form).

A registered hash runs (both GraphQL paths); an unknown one answers BAD_USER_INPUT with
Apollo's message; with ``CONSENTRY_TRUSTED_DOCUMENTS_ONLY=true`` anonymous and member callers
may send nothing else (POST or GET, in process and against a real server), while admins and
partners keep ad-hoc queries; the manifest matches the ``.graphql`` files.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from api.service.asgi import create_app
from api.service.composition import with_settings
from schema.trusted import MANIFEST, build, load, render
from tests.conftest import error_code
from tests.helpers_partners import announce, partner_token
from tests.helpers_serve import serve

ME_HASH = "8c080149e87eac02c623a21668fabf6f44f5ac139a4724b41b3de5eddcbf7f6e"
UNKNOWN = "0" * 64
AD_HOC_ME = "{ me { userId } }"
POLICY = "{ policy { version } }"
POLICY_HASH = "2f5acd173557f728b503d6d7533450022103e2803001325e9777b6150f8a234a"  # not registered


def _persisted(digest: str, **extra: object) -> dict[str, object]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}, **extra}


async def _post(client: httpx.AsyncClient, payload: dict[str, object],
                token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_manifest_is_built_from_the_graphql_files():
    """``make trusted`` was run after the last change to schema/trusted/*.graphql."""
    assert MANIFEST.read_text(encoding="utf-8") == render(build())
    assert ME_HASH in load()
    assert load()[ME_HASH].startswith("query Me {")


def test_a_manifest_entry_that_is_not_its_documents_hash_is_refused(tmp_path):
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps({ME_HASH: "query Me { me { id } }"}))
    with pytest.raises(ValueError, match="SHA-256"):
        load(bad)


@pytest.mark.both_graphql_paths
async def test_a_registered_hash_runs(client, member):
    body = await _post(client, _persisted(ME_HASH), member.token)
    assert "errors" not in body, body
    assert body["data"]["me"]["userId"] == "alice"
    assert body["data"]["me"]["consents"] == []
    named = await _post(client, _persisted(ME_HASH, operationName="Me", variables={}),
                        member.token)
    assert named["data"]["me"]["userId"] == "alice"
    # The registered text may come along (Apollo's automatic persisted queries send both).
    with_text = await _post(client, _persisted(ME_HASH, query=load()[ME_HASH]), member.token)
    assert with_text["data"]["me"]["userId"] == "alice"
    assert error_code(await _post(client, _persisted(ME_HASH))) == "UNAUTHENTICATED"
    # Unregistered text with its own hash (automatic persisted queries) is an ad-hoc document,
    # served while trusted_documents_only is off.
    ad_hoc = await _post(client, _persisted(POLICY_HASH, query=POLICY))
    assert ad_hoc == {"data": {"policy": {"version": "1.0"}}}


@pytest.mark.both_graphql_paths
async def test_an_unknown_hash_or_a_malformed_reference_is_refused(client, member):
    body = await _post(client, _persisted(UNKNOWN), member.token)
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "registered" in body["errors"][0]["extensions"]["detail"]
    for reference in ({"version": 2, "sha256Hash": ME_HASH}, {"version": 1},
                      {"version": 1, "sha256Hash": "ME"}, "Me"):
        body = await _post(client, {"extensions": {"persistedQuery": reference}}, member.token)
        assert error_code(body) == "BAD_USER_INPUT", body
        assert "persistedQuery" in body["errors"][0]["message"]
    mismatch = await _post(client, _persisted(ME_HASH, query=AD_HOC_ME), member.token)
    assert error_code(mismatch) == "BAD_USER_INPUT"
    assert mismatch["errors"][0]["message"] == "provided sha does not match query"
    wrong_name = await _post(client, _persisted(ME_HASH, operationName="Other"), member.token)
    assert error_code(wrong_name) == "BAD_USER_INPUT"


@pytest.fixture
async def strict(rt) -> AsyncIterator[httpx.AsyncClient]:
    """The app with CONSENTRY_TRUSTED_DOCUMENTS_ONLY=true, on the same store."""
    app = create_app(with_settings(rt, trusted_documents_only=True), manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_trusted_only_refuses_ad_hoc_documents_from_anonymous_and_members(strict, member):
    for token in (None, member.token, "not-a-token"):
        for query in (POLICY, AD_HOC_ME, "{ __typename }", "not graphql"):
            body = await _post(strict, {"query": query}, token)
            assert error_code(body) == "FORBIDDEN", (token, query, body)
            assert "trusted" in body["errors"][0]["message"]
            assert body.get("data") is None
        # An unregistered document sent with its own hash is still ad hoc.
        body = await _post(strict, _persisted(POLICY_HASH, query=POLICY), token)
        assert error_code(body) == "FORBIDDEN", body
        response = await strict.get("/graphql", params={"query": POLICY},
                                    headers={"authorization": f"Bearer {token}"} if token else {})
        assert response.status_code == 200
        assert error_code(response.json()) == "FORBIDDEN"
    body = await _post(strict, _persisted(ME_HASH), member.token)
    assert body["data"]["me"]["userId"] == "alice"


async def test_trusted_only_keeps_ad_hoc_queries_for_admins_and_partners(strict, client, gql,
                                                                        admin, tmp_path):
    body = await _post(strict, {"query": POLICY}, admin.token)
    assert body == {"data": {"policy": {"version": "1.0"}}}
    response = await strict.get("/graphql", params={"query": POLICY},
                                headers={"authorization": f"Bearer {admin.token}"})
    assert response.json() == {"data": {"policy": {"version": "1.0"}}}
    partner_id = await announce(gql, admin, directory=tmp_path)
    token = await partner_token(client, gql, admin, partner_id)
    body = await _post(strict, {"query": "{ sharedMembers(first: 1) { edges { cursor } } }"},
                       token)
    assert body == {"data": {"sharedMembers": {"edges": []}}}


def test_a_real_server_in_trusted_only_mode_refuses_anonymous_ad_hoc_documents(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(CONSENTRY_DATA_DIR=str(tmp_path / "data"), CONSENTRY_TRUSTED_DOCUMENTS_ONLY="true")
    with serve(env, tmp_path / "serve.log") as (url, _):
        ad_hoc = httpx.post(f"{url}/graphql", json={"query": POLICY}, timeout=10)
        assert error_code(ad_hoc.json()) == "FORBIDDEN"
        via_get = httpx.get(f"{url}/graphql", params={"query": POLICY}, timeout=10)
        assert error_code(via_get.json()) == "FORBIDDEN"
        registered = httpx.post(f"{url}/graphql", json=_persisted(ME_HASH), timeout=10)
        assert error_code(registered.json()) == "UNAUTHENTICATED"  # it ran: `me` needs a caller
