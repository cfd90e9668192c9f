"""A software WebAuthn authenticator plus the browser's part of a ceremony, for tests.

It answers the JSON options the API hands out the way ``navigator.credentials`` would, with the
bytes built here by hand (independently of py_webauthn, which the API verifies with): an EC P-256
key per credential, clientDataJSON, authenticatorData (rpIdHash, flags, signCount, attested
credential data with a zero AAGUID and a COSE key), a ``none`` attestation object, and ES256
assertion signatures. CBOR comes from ``cbor2`` (a dependency of py_webauthn).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["SoftAuthenticator", "Credential", "b64url", "unb64url"]

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps({"type": kind, "challenge": challenge, "origin": origin,
                       "crossOrigin": False}).encode()


class SoftAuthenticator:
    """Holds credentials like a platform authenticator (all of them discoverable)."""

    def __init__(self, origin: str = "http://localhost:8000") -> None:
        self.origin = origin
        self.credentials: list[Credential] = []

    def create(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """``navigator.credentials.create``: a new credential, answered in the JSON form."""
        rp_id = options["rp"]["id"]
        cred = Credential(os.urandom(32), ec.generate_private_key(ec.SECP256R1()), rp_id,
                          unb64url(options["user"]["id"]))
        self.credentials.append(cred)
        attested = bytes(16) + struct.pack(">H", len(cred.id)) + cred.id + cred.cose_key()
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([UP | UV | AT])
                     + struct.pack(">I", cred.sign_count) + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = _client_data("webauthn.create", options["challenge"],
                                   origin or self.origin)
        return {"id": b64url(cred.id), "rawId": b64url(cred.id), "type": "public-key",
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data),
                             "attestationObject": b64url(attestation),
                             "transports": ["internal", "hybrid"]}}

    def get(self, options: dict[str, Any], *, origin: str | None = None,
            credential: Credential | None = None, count: bool = True) -> dict[str, Any]:
        """``navigator.credentials.get``: an assertion by ``credential`` (else the first one
        the options allow, or for discoverable options the first for this relying party)."""
        rp_id = options["rpId"]
        if credential is None:
            allowed = {unb64url(c["id"]) for c in options.get("allowCredentials") or []}
            credential = next(c for c in self.credentials if c.rp_id == rp_id
                              and (not allowed or c.id in allowed))
        if count:
            credential.sign_count += 1
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([UP | UV])
                     + struct.pack(">I", credential.sign_count))
        client_data = _client_data("webauthn.get", options["challenge"], origin or self.origin)
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                        ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(credential.id), "rawId": b64url(credential.id),
                "type": "public-key", "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data),
                             "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature),
                             "userHandle": b64url(credential.user_handle)}}
