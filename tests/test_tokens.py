"""Token attacks over HTTP against ``me`` and role-gated operations.

Every forged, stale or misdirected token must be refused with UNAUTHENTICATED (bad token) or
FORBIDDEN (good token, wrong role); none may reach a resolver or crash into INTERNAL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.members.sessions import access_token_for
from api.security.tokens import Principal
from tests.conftest import LOGIN, PASSWORD, error_code

ME = "{ me { id userId } }"
REFRESH = "mutation($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken } }"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(rt, subject: str, **changes: Any) -> dict[str, Any]:
    now = int(rt.now().timestamp())
    claims: dict[str, Any] = {"iss": rt.settings.issuer, "aud": rt.settings.audience,
                              "iat": now, "nbf": now, "exp": now + 600, "sub": subject,
                              "role": "MEMBER", "jti": uuid.uuid4().hex}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _sign(rt, claims: dict[str, Any], *, key=None, kid: str | None = None) -> str:
    return jwt.encode(claims, key or rt.keys.signing_key, algorithm="EdDSA",
                      headers={"kid": rt.keys.kid if kid is None else kid})


async def _me_code(gql, token: str) -> str | None:
    body = await gql(ME, token=token)
    assert body.get("data") in (None, {"me": None}), body
    return error_code(body)


async def test_a_well_formed_token_is_accepted(gql, rt, member):
    # Control: the forging helper produces tokens the server accepts, so refusals below are
    # due to the single thing each test changes.
    body = await gql(ME, token=_sign(rt, _claims(rt, member.id)))
    assert body["data"]["me"]["id"] == member.id


async def test_alg_none_is_refused(gql, rt, member):
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": rt.keys.kid}).encode())
    payload = _b64(json.dumps(_claims(rt, member.id)).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert await _me_code(gql, token) == "UNAUTHENTICATED"


async def test_hs256_signed_with_the_public_key_is_refused(gql, rt, member):
    """Algorithm confusion: HMAC keyed with the (public) verification key bytes."""
    public = rt.keys.public_key
    secrets = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        json.dumps(rt.keys.jwks()["keys"][0]).encode(),
    ]
    payload = _b64(json.dumps(_claims(rt, member.id)).encode())
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": rt.keys.kid}).encode())
        for secret in secrets:
            sig = hmac.new(secret, f"{header}.{payload}".encode(), digest).digest()
            assert await _me_code(gql, f"{header}.{payload}.{_b64(sig)}") == "UNAUTHENTICATED"


async def test_right_kid_but_another_key_is_refused(gql, rt, member):
    token = _sign(rt, _claims(rt, member.id), key=Ed25519PrivateKey.generate())
    assert await _me_code(gql, token) == "UNAUTHENTICATED"


async def test_unknown_kid_is_refused(gql, rt, member):
    for kid in ("someone-else", "", "../../etc/passwd"):
        assert await _me_code(gql, _sign(rt, _claims(rt, member.id), kid=kid)) == "UNAUTHENTICATED"
    # No kid header at all.
    token = jwt.encode(_claims(rt, member.id), rt.keys.signing_key, algorithm="EdDSA")
    assert await _me_code(gql, token) == "UNAUTHENTICATED"


async def test_changed_payload_is_refused(gql, rt, member, other_member):
    header, _, signature = member.token.split(".")
    forged = _b64(json.dumps(_claims(rt, other_member.id)).encode())
    assert await _me_code(gql, f"{header}.{forged}.{signature}") == "UNAUTHENTICATED"
    # Role escalation inside an otherwise valid token.
    elevated = _b64(json.dumps(_claims(rt, member.id, role="ADMIN")).encode())
    body = await gql("{ members { edges { cursor } } }", token=f"{header}.{elevated}.{signature}")
    assert error_code(body) == "UNAUTHENTICATED"


async def test_expired_token_is_refused(gql, rt, clock, member):
    assert (await gql(ME, token=member.token))["data"]["me"]["id"] == member.id
    clock.advance(seconds=rt.settings.access_token_ttl + 1)
    assert await _me_code(gql, member.token) == "UNAUTHENTICATED"


async def test_not_yet_valid_token_is_refused(gql, rt, member):
    now = int(rt.now().timestamp())
    token = _sign(rt, _claims(rt, member.id, nbf=now + 3600, iat=now + 3600, exp=now + 7200))
    assert await _me_code(gql, token) == "UNAUTHENTICATED"


@pytest.mark.parametrize("claim,value", [
    ("aud", "someone-elses-api"), ("aud", ["someone-elses-api"]), ("iss", "https://evil.example"),
    ("role", "SUPERUSER"), ("role", "admin"), ("exp", "tomorrow"),
])
async def test_wrong_claim_values_are_refused(gql, rt, member, claim, value):
    assert await _me_code(gql, _sign(rt, _claims(rt, member.id, **{claim: value}))) == \
        "UNAUTHENTICATED"


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "sub", "role", "jti"])
async def test_each_required_claim_missing_is_refused(gql, rt, member, claim):
    assert await _me_code(gql, _sign(rt, _claims(rt, member.id, **{claim: None}))) == \
        "UNAUTHENTICATED"


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer a.b", "Bearer ....",
    "Bearer " + "A" * 5000, "Token abc",
])
async def test_malformed_authorization_headers_are_refused(client, header):
    response = await client.post("/graphql", json={"query": ME}, headers={"authorization": header})
    assert response.status_code == 200
    assert error_code(response.json()) == "UNAUTHENTICATED"


async def test_bad_token_is_refused_even_on_public_operations_that_ignore_it(client):
    """A bad token never silently downgrades to anonymous on an operation that needs one."""
    response = await client.post("/graphql", json={"query": ME},
                                 headers={"authorization": "Bearer x.y.z"})
    assert error_code(response.json()) == "UNAUTHENTICATED"


async def test_member_token_on_admin_and_partner_operations_is_forbidden(gql, member):
    for query in ("{ members { edges { cursor } } }", f"{{ member(id: \"{member.id}\") {{ id }} }}",
                  "{ sharedMembers { edges { cursor } } }", "{ partners { id } }",
                  "{ auditTrail { edges { cursor } } }", "{ dataRequests { id } }"):
        assert error_code(await gql(query, token=member.token)) == "FORBIDDEN", query


def _partner_token(rt, scopes: tuple[str, ...] = ("members:read",)) -> str:
    principal = Principal("PARTNER", str(uuid.uuid4()), scopes, client_id="client-1")
    return access_token_for(rt, principal)


async def test_partner_token_on_member_operations_is_forbidden(gql, rt, member):
    token = _partner_token(rt)
    assert error_code(await gql(ME, token=token)) == "FORBIDDEN"
    body = await gql('mutation { updateProfile(input: {fullName: "Mallory"}) { id } }', token=token)
    assert error_code(body) == "FORBIDDEN"
    assert error_code(await gql("{ members { edges { cursor } } }", token=token)) == "FORBIDDEN"


async def test_partner_subject_in_a_member_token_is_not_a_member(gql, rt, member):
    """A partner id used as a member subject (the reverse swap) finds no member."""
    token = access_token_for(rt, Principal("MEMBER", str(uuid.uuid4())))
    assert error_code(await gql(ME, token=token)) in ("NOT_FOUND", "UNAUTHENTICATED")


async def test_admin_token_is_not_a_member_token(gql, admin):
    assert error_code(await gql(ME, token=admin.token)) == "FORBIDDEN"


async def test_refresh_reuse_revokes_the_family_for_every_descendant(gql, member):
    second = (await gql(REFRESH, {"t": member.refresh_token}))["data"]["refresh"]
    third = (await gql(REFRESH, {"t": second["refreshToken"]}))["data"]["refresh"]
    # The attacker replays the first (spent) token.
    assert error_code(await gql(REFRESH, {"t": member.refresh_token})) == "UNAUTHENTICATED"
    assert error_code(await gql(REFRESH, {"t": third["refreshToken"]})) == "UNAUTHENTICATED"
    # Another sign-in (another family) is unaffected.
    fresh = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]
    assert "errors" not in await gql(REFRESH, {"t": fresh["refreshToken"]})


async def test_refresh_token_is_not_an_access_token_and_vice_versa(gql, member):
    assert await _me_code(gql, member.refresh_token) == "UNAUTHENTICATED"
    assert error_code(await gql(REFRESH, {"t": member.token})) == "UNAUTHENTICATED"


async def test_expired_refresh_token_is_refused(gql, rt, clock, member):
    clock.advance(seconds=rt.settings.refresh_token_ttl + 1)
    assert error_code(await gql(REFRESH, {"t": member.refresh_token})) == "UNAUTHENTICATED"


async def test_an_admin_session_ends_12_hours_after_sign_in_however_refreshed(gql, clock, admin,
                                                                             member):
    """Refreshing every 4 hours slides a member's session, never an admin's."""
    admin_token, member_token = admin.refresh_token, member.refresh_token
    for _ in range(2):
        clock.advance(hours=4)
        renewed = (await gql(REFRESH, {"t": admin_token}))["data"]["refresh"]
        admin_token = renewed["refreshToken"]
        member_token = (await gql(REFRESH, {"t": member_token}))["data"]["refresh"]["refreshToken"]
    clock.advance(hours=3, minutes=59)  # 11:59 after sign-in: the access token stops at 12:00
    last = (await gql("mutation($t: String!) { refresh(refreshToken: $t) { refreshToken "
                      "expiresIn role } }", {"t": admin_token}))["data"]["refresh"]
    assert (last["expiresIn"], last["role"]) == (60, "ADMIN")
    clock.advance(minutes=2)
    assert error_code(await gql(REFRESH, {"t": last["refreshToken"]})) == "UNAUTHENTICATED"
    assert "errors" not in await gql(REFRESH, {"t": member_token})


async def test_no_token_error_ever_leaks_internals(gql, rt, member):
    garbage = ["%00", "e.e.e", "eyJ" * 50, "a.b.c.d.e", base64.b64encode(b"{}").decode()]
    for token in garbage:
        body = await gql(ME, token=token)
        assert error_code(body) == "UNAUTHENTICATED"
        message = body["errors"][0]["message"].lower()
        assert "traceback" not in message and "jwt" not in message and "decode" not in message


@pytest.mark.parametrize("claims", [
    {"exp": "tomorrow"}, {"iat": None, "nbf": "x"}, {"sub": 12345}, {"jti": ["a"]},
    {"exp": True}, {"nbf": {"a": 1}},
])
async def test_wrongly_typed_claims_are_refused_not_internal(gql, rt, member, claims):
    assert await _me_code(gql, _sign(rt, _claims(rt, member.id, **claims))) == "UNAUTHENTICATED"


async def test_partner_token_stops_working_when_its_credentials_are_revoked(gql, client, admin,
                                                                            tmp_path):
    from tests.helpers_partners import announce, credentials, token_response

    partner = await announce(gql, admin, "RevokeCo", directory=tmp_path)
    client_id, secret = await credentials(gql, admin, partner, ("members:read",))
    token = (await token_response(client, client_id, secret)).json()["access_token"]
    query = "{ sharedMembers { edges { cursor } } }"
    assert "errors" not in await gql(query, token=token)
    body = await gql('mutation($c: String!) { revokePartnerCredentials(clientId: $c) }',
                     {"c": client_id}, token=admin.token)
    assert body["data"]["revokePartnerCredentials"] is True
    assert error_code(await gql(query, token=token)) == "UNAUTHENTICATED"
    assert (await token_response(client, client_id, secret)).status_code in (400, 401)


async def test_forged_partner_token_for_an_unknown_client_is_refused(gql, rt):
    query = "{ sharedMembers { edges { cursor } } }"
    assert error_code(await gql(query, token=_partner_token(rt))) == "UNAUTHENTICATED"


async def test_token_of_a_withdrawn_member_reads_nothing(gql, member):
    body = await gql(f'mutation {{ withdrawMembership(password: "{PASSWORD}") {{ destroyed }} }}',
                     token=member.token)
    assert body["data"]["withdrawMembership"]["destroyed"] is True
    body = await gql(ME, token=member.token)
    assert error_code(body) in ("NOT_FOUND", "UNAUTHENTICATED") and body["data"] in (None,
                                                                                    {"me": None})
    body = await gql("mutation($t: String!) { refresh(refreshToken: $t) { accessToken } }",
                     {"t": member.refresh_token})
    assert error_code(body) == "UNAUTHENTICATED"
