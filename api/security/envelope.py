"""Envelope encryption: one AES-256-GCM data key per member, wrapped by the active KEK.

Field ciphertexts are bound to their member and field name (AES-GCM associated data), so a
ciphertext copied to another row or column does not decrypt. Destroying a member's wrapped
data key makes every field ciphertext of that member unrecoverable (crypto-shredding).

Layout of a field ciphertext: ``b"\\x01" + nonce(12) + ciphertext||tag``.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.security.keys import KeyRing

__all__ = ["DataKey", "UndecryptableError", "new_data_key", "unwrap", "rewrap"]

_VERSION = b"\x01"


class UndecryptableError(Exception):
    """A ciphertext failed authentication: wrong key, wrong binding, or tampered bytes."""


class DataKey:
    """An unwrapped member data key. Lives in memory for one operation only."""

    __slots__ = ("_aead", "owner")

    def __init__(self, key: bytes, owner: str) -> None:
        self._aead = AESGCM(key)
        self.owner = owner

    def __repr__(self) -> str:
        return f"DataKey(owner={self.owner!r})"

    def encrypt(self, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        aad = f"{self.owner}/{field}".encode()
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad)

    def decrypt(self, field: str, blob: bytes) -> str:
        if not blob or blob[:1] != _VERSION:
            raise UndecryptableError("unknown ciphertext format")
        aad = f"{self.owner}/{field}".encode()
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], aad).decode("utf-8")
        except InvalidTag as exc:
            raise UndecryptableError("ciphertext does not authenticate") from exc

    def encrypt_optional(self, field: str, plaintext: str | None) -> bytes | None:
        return None if plaintext is None else self.encrypt(field, plaintext)

    def decrypt_optional(self, field: str, blob: bytes | None) -> str | None:
        return None if blob is None else self.decrypt(field, bytes(blob))


def _wrap(keys: KeyRing, version: int, raw: bytes, owner: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + keys.kek_cipher(version).encrypt(nonce, raw, b"dek/" + owner.encode())


def new_data_key(keys: KeyRing, owner: str) -> tuple[DataKey, bytes, int]:
    """A fresh data key, its wrapped form and the KEK version that wrapped it."""
    raw = AESGCM.generate_key(bit_length=256)
    return DataKey(raw, owner), _wrap(keys, keys.active_kek, raw, owner), keys.active_kek


def _unwrap_raw(keys: KeyRing, wrapped: bytes, version: int, owner: str) -> bytes:
    try:
        cipher = keys.kek_cipher(version)
    except KeyError:
        raise UndecryptableError(f"key-encryption key version {version} is not loaded") from None
    try:
        return cipher.decrypt(wrapped[:12], wrapped[12:], b"dek/" + owner.encode())
    except InvalidTag as exc:
        raise UndecryptableError("data key does not unwrap") from exc


def unwrap(keys: KeyRing, wrapped: bytes, version: int, owner: str) -> DataKey:
    return DataKey(_unwrap_raw(keys, bytes(wrapped), version, owner), owner)


def rewrap(keys: KeyRing, wrapped: bytes, version: int, owner: str) -> tuple[bytes, int]:
    """Re-wrap a data key under the active KEK; field ciphertexts are untouched."""
    raw = _unwrap_raw(keys, bytes(wrapped), version, owner)
    return _wrap(keys, keys.active_kek, raw, owner), keys.active_kek
