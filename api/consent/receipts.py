"""Consent receipts: a compact JWS per consent event that anyone can verify offline.

The claims follow the Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 record: receipt id,
timestamp, controller, a pseudonymous subject reference, purpose, legal basis, policy version
and state. The subject reference is a keyed HMAC of the member id: stable for one member (so a
member or an auditor holding the service's keys can tie receipts together) but reveals no
identifier and no personal value. Signed with the service's Ed25519 key (``alg: EdDSA``) whose
public half is served at ``/.well-known/jwks.json``; the header ``typ`` keeps receipts apart
from access tokens, which in any case require claims (``aud``, ``exp``, ``role``) receipts lack.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import jwt
import orjson

from api.models.enums import ConsentState, LegalBasis
from api.security.keys import KeyRing

__all__ = ["RECEIPT_TYPE", "RECEIPT_VERSION", "DESTRUCTION_TYPE", "DESTRUCTION_VERSION",
           "subject_ref", "issue", "issue_destruction", "verify"]

RECEIPT_TYPE = "consent-receipt+jwt"
RECEIPT_VERSION = "consentry-receipt/1 (Kantara CR v1.1, ISO/IEC TS 27560)"
DESTRUCTION_TYPE = "destruction-receipt+jwt"
DESTRUCTION_VERSION = "consentry-destruction-receipt/1"


def subject_ref(keys: KeyRing, member_id: str) -> str:
    return "s_" + keys.mac("consent-subject", str(member_id).encode()).hex()[:32]


def issue(keys: KeyRing, *, receipt_id: str, member_id: str, issuer: str, controller: str,
          purpose: str, legal_basis: LegalBasis, policy_version: str, state: ConsentState,
          at: datetime, collection: str = "api", issued_at: datetime | None = None,
          source: str | None = None) -> str:
    """``at`` is when consent was given (``consentTimestamp``); ``issued_at`` when this receipt
    is signed (``iat``), the same unless the consent is older than its receipt (an import:
    ``source="import"`` says so in the receipt)."""
    claims: dict[str, Any] = {
        "jti": receipt_id,
        "iss": issuer,
        "iat": int((issued_at or at).timestamp()),
        "sub": subject_ref(keys, member_id),
        "version": RECEIPT_VERSION,
        "consentReceiptID": receipt_id,
        "consentTimestamp": at.isoformat(),
        "collectionMethod": collection,
        "piiControllers": [{"piiController": controller}],
        "policyVersion": policy_version,
        "purpose": purpose,
        "legalBasis": str(legal_basis),
        "state": str(state),
        "sensitive": purpose == "health_data",
    }
    if source is not None:
        claims["source"] = source
    return _sign(keys, RECEIPT_TYPE, claims)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _sign(keys: KeyRing, typ: str, claims: dict[str, Any]) -> str:
    """The compact JWS (RFC 7515) ``jwt.encode`` writes for these claims and headers, built
    directly: one signature per consent write, without PyJWT's per-call checks and encoder.
    :func:`verify` (and any JOSE library holding the JWKS) reads it back."""
    header = orjson.dumps({"alg": "EdDSA", "kid": keys.kid, "typ": typ},
                          option=orjson.OPT_SORT_KEYS)
    signing_input = _b64(header) + b"." + _b64(orjson.dumps(claims))
    return (signing_input + b"." + _b64(keys.signing_key.sign(signing_input))).decode("ascii")


def issue_destruction(keys: KeyRing, *, receipt_id: str, member_id: str, issuer: str,
                      controller: str, at: datetime, destroyed: list[str],
                      retained_fields: list[str], retained_purchases: int,
                      retained_until: datetime | None, partners_told: list[str]) -> str:
    """The signed confirmation of a member's destruction (policy Art. 8.1): same key, same
    pseudonym (``sub``) as the member's consent receipts, so the member can tie them together;
    no identifier, no personal value, only categories, field names, counts and partner names."""
    claims: dict[str, Any] = {
        "jti": receipt_id,
        "iss": issuer,
        "iat": int(at.timestamp()),
        "sub": subject_ref(keys, member_id),
        "version": DESTRUCTION_VERSION,
        "controller": controller,
        "destroyedAt": at.isoformat(),
        "destroyed": sorted(destroyed),
        "retained": {"fields": sorted(retained_fields), "purchases": retained_purchases,
                     "until": retained_until.isoformat() if retained_until else None},
        "partnersTold": sorted(partners_told),
    }
    return _sign(keys, DESTRUCTION_TYPE, claims)


def verify(keys: KeyRing, receipt: str) -> dict[str, Any]:
    """Check a receipt against our own key (raises ``jwt.InvalidTokenError`` if it is not ours)."""
    return jwt.decode(receipt, keys.public_key, algorithms=["EdDSA"],
                      options={"require": ["jti", "iss", "iat", "sub"]})
