"""Key material: the key-encryption keys (versioned), the token-signing key and the index key.

Production reads them from files named by ``CONSENTRY_KEK_FILE``, ``CONSENTRY_SIGNING_KEY_FILE``
and ``CONSENTRY_INDEX_KEY_FILE``. Development generates them under the data directory, loudly,
and production refuses to start with those generated keys.

File formats:

- KEK file: JSON ``{"active": 2, "keys": {"1": "<base64 32 bytes>", "2": "..."}}``; old versions
  stay until ``consentry keys rotate`` has re-wrapped every data key.
- signing key: a PEM Ed25519 private key (tokens and consent receipts, ``alg: EdDSA``).
- index key: base64 of 32 random bytes, the HMAC secret behind blind indexes and partner refs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.core.settings import Settings

__all__ = ["KeyRing", "DevelopmentKeysRefused", "generate_kek_file"]

log = logging.getLogger("consentry.keys")

DEV_MARKER = "generated-for-development"


class DevelopmentKeysRefused(RuntimeError):
    """Production was asked to run on keys generated for development."""


@dataclass(frozen=True, repr=False)
class KeyRing:
    keks: dict[int, bytes]
    active_kek: int
    signing_key: Ed25519PrivateKey
    index_key: bytes
    generated: bool = False
    kid: str = field(default="")
    # Sub-keys and KEK ciphers are pure functions of the keys above: made once, on the write
    # path's hot spots (every consent receipt's subject, every member key unwrapped).
    _derived: dict[str, bytes] = field(default_factory=dict, init=False, compare=False)
    _kek_ciphers: dict[int, AESGCM] = field(default_factory=dict, init=False, compare=False)

    def __repr__(self) -> str:  # never print key bytes
        return f"KeyRing(active_kek={self.active_kek}, kid={self.kid!r})"

    @property
    def kek(self) -> bytes:
        return self.keks[self.active_kek]

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    def derive(self, purpose: str) -> bytes:
        """A sub-key of the index key for one use (blind index, partner ref, cursor...)."""
        key = self._derived.get(purpose)
        if key is None:
            key = self._derived[purpose] = hmac.digest(
                self.index_key, b"consentry/" + purpose.encode(), hashlib.sha256)
        return key

    def mac(self, purpose: str, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the sub-key for ``purpose``."""
        return hmac.digest(self.derive(purpose), message, hashlib.sha256)

    def kek_cipher(self, version: int) -> AESGCM:
        """AES-GCM under KEK ``version``; ``KeyError`` when that version is not loaded."""
        cipher = self._kek_ciphers.get(version)
        if cipher is None:
            cipher = self._kek_ciphers[version] = AESGCM(self.keks[version])
        return cipher

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid,
                      "alg": "EdDSA", "use": "sig"}]
        }

    @classmethod
    def load(cls, settings: Settings) -> KeyRing:
        """Load configured keys, or generate development keys; refuse those in production."""
        keydir = settings.data_dir / "keys"
        kek_path = Path(settings.kek_file) if settings.kek_file else keydir / "kek.json"
        sign_path = (Path(settings.signing_key_file) if settings.signing_key_file
                     else keydir / "signing.pem")
        index_path = (Path(settings.index_key_file) if settings.index_key_file
                      else keydir / "index.key")
        generated = False
        if not (settings.kek_file and settings.signing_key_file and settings.index_key_file):
            if settings.production:
                raise DevelopmentKeysRefused(
                    "production needs CONSENTRY_KEK_FILE, CONSENTRY_SIGNING_KEY_FILE and "
                    "CONSENTRY_INDEX_KEY_FILE; development keys are refused"
                )
            _generate_missing(keydir, kek_path, sign_path, index_path)
            generated = True
        kek_doc = json.loads(kek_path.read_text())
        if settings.production and kek_doc.get("note") == DEV_MARKER:
            raise DevelopmentKeysRefused("the key-encryption key was generated for development")
        keks = {int(v): base64.b64decode(k) for v, k in kek_doc["keys"].items()}
        if any(len(k) != 32 for k in keks.values()):
            raise ValueError("every key-encryption key must be 32 bytes (AES-256)")
        signing = serialization.load_pem_private_key(sign_path.read_bytes(), password=None)
        if not isinstance(signing, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        index_key = base64.b64decode(index_path.read_text().strip())
        pub = signing.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kid = hashlib.sha256(pub).hexdigest()[:16]
        return cls(keks, int(kek_doc["active"]), signing, index_key, generated, kid)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_kek_file(path: Path, *, note: str = "") -> None:
    doc = {"active": 1, "keys": {"1": base64.b64encode(secrets.token_bytes(32)).decode()}}
    if note:
        doc["note"] = note
    _write_private(path, json.dumps(doc, indent=2).encode())


def _generate_missing(keydir: Path, kek: Path, sign: Path, index: Path) -> None:
    made = False
    if not kek.exists():
        generate_kek_file(kek, note=DEV_MARKER)
        made = True
    if not sign.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(sign, pem)
        made = True
    if not index.exists():
        _write_private(index, base64.b64encode(secrets.token_bytes(32)))
        made = True
    if made:
        log.warning(
            "DEVELOPMENT KEYS generated in %s. They protect nothing: never use them in "
            "production (CONSENTRY_ENV=production refuses them).", keydir
        )
