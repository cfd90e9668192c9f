"""Consent receipts verify offline with nothing but the published JWKS."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jwt
import pytest

from api.consent import receipts
from api.models.consent import ConsentEvent
from tests.conftest import error_code
from tests.helpers_consent import fresh_token

GIVE = """mutation($p: String!, $v: String!) {
  giveConsent(purpose: $p, policyVersion: $v) { purpose state policyVersion at receipt } }"""
WITHDRAW = "mutation($p: String!) { withdrawConsent(purpose: $p) { state at receipt } }"


async def _jwks_key(client) -> jwt.PyJWK:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    # Only the published JSON: a fresh PyJWK built from it, nothing from the server's key ring.
    return jwt.PyJWK(response.json()["keys"][0])


async def test_receipt_verifies_with_only_the_jwks(gql, client, member, rt):
    body = await gql(GIVE, {"p": "health_data", "v": "1.0"}, token=member.token)
    given = body["data"]["giveConsent"]
    key = await _jwks_key(client)
    header = jwt.get_unverified_header(given["receipt"])
    assert header["alg"] == "EdDSA" and header["kid"] == key.key_id
    assert header["typ"] == receipts.RECEIPT_TYPE
    claims = jwt.decode(given["receipt"], key, algorithms=["EdDSA"])
    row = await ConsentEvent.get(member_id=member.id)
    assert claims["jti"] == claims["consentReceiptID"] == str(row.id)
    assert claims["iss"] == rt.settings.issuer
    assert claims["piiControllers"] == [{"piiController": rt.settings.controller}]
    assert claims["purpose"] == "health_data" and claims["legalBasis"] == "CONSENT"
    assert claims["policyVersion"] == "1.0" and claims["state"] == "GIVEN"
    assert claims["sensitive"] is True
    assert datetime.fromisoformat(claims["consentTimestamp"]) == \
        datetime.fromisoformat(given["at"])
    assert claims["iat"] == int(datetime.fromisoformat(given["at"]).timestamp())


async def test_receipt_names_a_later_policy_version(gql, client, member, admin, clock):
    """Consent given under an announced version, once in force, carries that version."""
    body = await gql("""mutation { announcePolicy(version: "2.3", text: "Version two point three",
                       effectiveAt: "2026-01-31T00:00:00+00:00") { version } }""", token=admin.token)
    assert body["data"]["announcePolicy"]["version"] == "2.3", body
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    token = await fresh_token(gql, member.user_id)
    body = await gql(GIVE, {"p": "research", "v": "2.3"}, token=token)
    given = body["data"]["giveConsent"]
    assert given["policyVersion"] == "2.3"
    claims = jwt.decode(given["receipt"], await _jwks_key(client), algorithms=["EdDSA"])
    assert claims["policyVersion"] == "2.3"
    assert claims["purpose"] == "research" and claims["state"] == "GIVEN"
    assert claims["consentTimestamp"] == "2026-02-01T00:00:00+00:00"
    assert claims["iat"] == 1769904000


async def test_receipt_holds_no_identifier_or_personal_value(gql, member):
    body = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    receipt = body["data"]["giveConsent"]["receipt"]
    claims = jwt.decode(receipt, options={"verify_signature": False})
    text = str(claims).lower()
    for value in (member.id, "alice", "example.org", "7946", "clinic road", "1990"):
        assert value not in text
    assert claims["sub"].startswith("s_")


async def test_subject_reference_is_stable_per_member(gql, member, other_member, clock):
    first = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    clock.advance(minutes=1)
    withdrawn = await gql(WITHDRAW, {"p": "marketing"}, token=member.token)
    other = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=other_member.token)
    subs = [jwt.decode(r, options={"verify_signature": False})["sub"] for r in (
        first["data"]["giveConsent"]["receipt"], withdrawn["data"]["withdrawConsent"]["receipt"],
        other["data"]["giveConsent"]["receipt"])]
    assert subs[0] == subs[1] != subs[2]


async def test_withdrawal_has_its_own_receipt(gql, client, member, clock):
    await gql(GIVE, {"p": "research", "v": "1.0"}, token=member.token)
    clock.advance(days=2)
    token = await fresh_token(gql, member.user_id)
    body = await gql(WITHDRAW, {"p": "research"}, token=token)
    claims = jwt.decode(body["data"]["withdrawConsent"]["receipt"], await _jwks_key(client),
                        algorithms=["EdDSA"])
    assert claims["state"] == "WITHDRAWN" and claims["purpose"] == "research"


async def test_tampered_receipt_fails_verification(gql, client, member):
    body = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    head, _payload, signature = body["data"]["giveConsent"]["receipt"].split(".")
    forged_claims = jwt.decode(body["data"]["giveConsent"]["receipt"],
                               options={"verify_signature": False}) | {"state": "WITHDRAWN"}
    forged_payload = jwt.utils.base64url_encode(json.dumps(forged_claims).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{forged_payload}.{signature}", await _jwks_key(client),
                   algorithms=["EdDSA"])


async def test_receipt_is_not_accepted_as_an_access_token(gql, member):
    body = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    receipt = body["data"]["giveConsent"]["receipt"]
    assert error_code(await gql("{ me { id } }", token=receipt)) == "UNAUTHENTICATED"
