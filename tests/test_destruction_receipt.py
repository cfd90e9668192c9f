"""Signed destruction receipts (policy Art. 8.1): ``withdrawMembership`` answers a compact JWS
that verifies with nothing but the published JWKS, and fails once one byte changes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import jwt
import pytest

from api.consent import receipts
from tests.conftest import PASSWORD
from tests.helpers_rights import add_purchase, disclose, make_partner

WITHDRAW = """mutation($p: String!) { withdrawMembership(password: $p) {
  withdrawnAt destroyed retainedUntil partnersNotified receipt } }"""


async def _jwks_key(client) -> jwt.PyJWK:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return jwt.PyJWK(response.json()["keys"][0])  # only the published JSON


async def test_receipt_verifies_with_the_jwks_alone(gql, client, member, rt, clock):
    partner = await make_partner(rt, "ShipFast")
    await disclose(rt, partner, member.id, ["FULL_NAME", "ADDRESS"])
    await add_purchase(rt, member.id, "order 7", at=datetime(2026, 2, 10, tzinfo=UTC))
    body = await gql(WITHDRAW, {"p": PASSWORD}, token=member.token)
    answer = body["data"]["withdrawMembership"]
    withdrawn_at = datetime.fromisoformat(answer["withdrawnAt"])
    key = await _jwks_key(client)
    header = jwt.get_unverified_header(answer["receipt"])
    assert header == {"alg": "EdDSA", "kid": key.key_id, "typ": "destruction-receipt+jwt"}
    claims = jwt.decode(answer["receipt"], key, algorithms=["EdDSA"])
    assert claims["sub"].startswith("s_") and len(claims["sub"]) == 34
    assert claims["sub"] == receipts.subject_ref(rt.keys, member.id)  # the consent pseudonym
    assert claims["iat"] == int(withdrawn_at.timestamp())
    assert datetime.fromisoformat(claims["destroyedAt"]) == withdrawn_at
    assert claims["controller"] == "Consentry Clinic"
    assert claims["destroyed"] == ["consent_history", "data_key", "disclosure_history",
                                   "notifications", "passkeys", "profile", "purchases",
                                   "sessions", "undelivered_partner_events"]
    assert claims["retained"] == {"fields": ["address", "fullName"], "purchases": 1,
                                  "until": "2031-02-10T00:00:00+00:00"}
    assert claims["partnersTold"] == ["ShipFast"]
    text = answer["receipt"] + str(claims)
    for value in (member.id, "alice", "example.org", "order 7"):
        assert value not in text.lower()


async def test_one_changed_byte_fails_verification(gql, client, member):
    body = await gql(WITHDRAW, {"p": PASSWORD}, token=member.token)
    token = body["data"]["withdrawMembership"]["receipt"]
    key = await _jwks_key(client)
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[len(raw) // 2] ^= 0x01
    forged = ".".join((head, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(), sig))
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(forged, key, algorithms=["EdDSA"])
    assert jwt.decode(token, key, algorithms=["EdDSA"])["retained"] == {
        "fields": [], "purchases": 0, "until": None}
    assert jwt.decode(token, key, algorithms=["EdDSA"])["partnersTold"] == []
