"""``POST /oauth/token`` (RFC 6749 §4.4) and partner credentials, over HTTP."""

from __future__ import annotations

import base64
from urllib.parse import quote

import jwt

from api.models.partner import PartnerCredential
from tests.conftest import error_code
from tests.helpers_partners import (
    ISSUE,
    PURCHASE,
    SHARED,
    announce,
    assert_forbidden,
    credentials,
    long_sessions,  # noqa: F401 - autouse fixture
    partner_token,
    token_response,
)

ME = "{ me { id } }"


async def _partner(gql, admin, tmp_path, name: str = "ShipFast") -> str:
    return await announce(gql, admin, name, directory=tmp_path)


async def test_client_credentials_with_form_fields(gql, client, admin, rt, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    client_id, secret = await credentials(gql, admin, pid)
    response = await token_response(client, client_id, secret)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == rt.settings.partner_token_ttl
    assert body["scope"] == "members:read purchases:write"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["role"], claims["client_id"]) == (pid, "PARTNER", client_id)


async def test_client_credentials_with_http_basic_and_a_narrower_scope(gql, client, admin,
                                                                       tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    client_id, secret = await credentials(gql, admin, pid)
    basic = base64.b64encode(f"{quote(client_id)}:{quote(secret)}".encode()).decode()
    response = await client.post("/oauth/token",
                                 data={"grant_type": "client_credentials",
                                       "scope": "members:read"},
                                 headers={"authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "members:read"
    token = response.json()["access_token"]
    assert "errors" not in await gql(SHARED, token=token)
    body = await gql(PURCHASE, {"m": "x", "a": "1", "c": "EUR", "r": "r"}, token=token)
    assert_forbidden(body)


async def test_token_endpoint_errors_follow_rfc_6749(gql, client, admin, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    client_id, secret = await credentials(gql, admin, pid, ("members:read",))
    ok = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    cases = [
        ({**ok, "client_secret": secret + "x"}, 401, "invalid_client"),
        ({**ok, "client_id": "pc_unknown"}, 401, "invalid_client"),
        ({**ok, "client_id": "pc_\x00" + "0" * 21}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
        ({k: v for k, v in ok.items() if k != "grant_type"}, 400, "invalid_request"),
        ({**ok, "grant_type": "password"}, 400, "unsupported_grant_type"),
        ({**ok, "scope": "purchases:write"}, 400, "invalid_scope"),
        ({**ok, "scope": "admin"}, 400, "invalid_scope"),
    ]
    for form, status, error in cases:
        response = await client.post("/oauth/token", data=form)
        assert (response.status_code, response.json()["error"]) == (status, error), form
        assert "access_token" not in response.json()
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Basic")
    response = await client.post("/oauth/token", json=ok)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = await client.post("/oauth/token", data=ok, headers={"authorization": f"Basic {basic}"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    response = await client.post("/oauth/token", content=b"grant_type=client_credentials&\xff",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


async def test_secret_is_shown_once_and_stored_only_as_a_hash(gql, admin, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    client_id, secret = await credentials(gql, admin, pid)
    assert len(base64.urlsafe_b64decode(secret + "==")) == 32
    row = await PartnerCredential.get(client_id=client_id)
    assert secret not in row.secret_hash and len(row.secret_hash) == 64
    client_id2, secret2 = await credentials(gql, admin, pid)
    assert (client_id2, secret2) != (client_id, secret)


async def test_issue_refuses_unknown_scopes_and_partners(gql, admin, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    for scopes in (["members:write"], [], ["  "]):
        body = await gql(ISSUE, {"id": pid, "s": scopes}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", scopes
    body = await gql(ISSUE, {"id": "00000000-0000-0000-0000-000000000001",
                             "s": ["members:read"]}, token=admin.token)
    assert error_code(body) == "NOT_FOUND"


async def test_revoked_credentials_get_no_token_and_their_tokens_stop(gql, client, admin,
                                                                      tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    client_id, secret = await credentials(gql, admin, pid)
    token = (await token_response(client, client_id, secret)).json()["access_token"]
    assert "errors" not in await gql(SHARED, token=token)
    revoke = "mutation($c: String!) { revokePartnerCredentials(clientId: $c) }"
    assert (await gql(revoke, {"c": client_id}, token=admin.token))["data"] == {
        "revokePartnerCredentials": True}
    assert (await gql(revoke, {"c": client_id}, token=admin.token))["data"] == {
        "revokePartnerCredentials": False}
    assert error_code(await gql(revoke, {"c": "pc_nope"}, token=admin.token)) == "NOT_FOUND"
    assert error_code(await gql(revoke, {"c": "pc_\x00"}, token=admin.token)) == "NOT_FOUND"
    response = await token_response(client, client_id, secret)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert error_code(await gql(SHARED, token=token)) == "UNAUTHENTICATED"


async def test_partner_tokens_are_short_lived(gql, client, admin, clock, rt, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    token = await partner_token(client, gql, admin, pid)
    clock.advance(seconds=rt.settings.partner_token_ttl - 1)
    assert "errors" not in await gql(SHARED, token=token)
    clock.advance(seconds=1)
    assert error_code(await gql(SHARED, token=token)) == "UNAUTHENTICATED"


async def test_tokens_work_only_for_their_role(gql, client, admin, member, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    token = await partner_token(client, gql, admin, pid)
    assert_forbidden(await gql(ME, token=token))
    assert_forbidden(await gql(SHARED, token=member.token))
    assert_forbidden(await gql(SHARED, token=admin.token))
    assert error_code(await gql(SHARED)) == "UNAUTHENTICATED"
    body = await gql(PURCHASE, {"m": member.id, "a": "1", "c": "EUR", "r": "r"},
                     token=member.token)
    assert_forbidden(body)


async def test_retired_partner_gets_no_token(gql, client, admin, tmp_path):
    pid = await _partner(gql, admin, tmp_path)
    client_id, secret = await credentials(gql, admin, pid)
    token = (await token_response(client, client_id, secret)).json()["access_token"]
    await gql("mutation($id: ID!) { retirePartner(partnerId: $id) { kind } }", {"id": pid},
              token=admin.token)
    response = await token_response(client, client_id, secret)
    assert response.status_code == 401
    assert error_code(await gql(SHARED, token=token)) == "UNAUTHENTICATED"
