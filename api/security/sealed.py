"""Small secrets sealed directly under the KEK (admin TOTP secrets, partner adapter configs).

Layout: KEK version (2 bytes, big-endian) + nonce(12) + ciphertext||tag, so ``keys rotate``
can re-seal them like data keys.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag

from api.security.envelope import UndecryptableError
from api.security.keys import KeyRing

__all__ = ["seal", "open_sealed", "reseal"]


def seal(keys: KeyRing, aad: str, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return (keys.active_kek.to_bytes(2, "big") + nonce
            + keys.kek_cipher(keys.active_kek).encrypt(nonce, data, aad.encode()))


def open_sealed(keys: KeyRing, aad: str, blob: bytes) -> bytes:
    blob = bytes(blob)
    try:
        cipher = keys.kek_cipher(int.from_bytes(blob[:2], "big"))
    except KeyError:
        raise UndecryptableError("sealed under a key-encryption key that is not loaded") from None
    try:
        return cipher.decrypt(blob[2:14], blob[14:], aad.encode())
    except InvalidTag as exc:
        raise UndecryptableError("sealed value does not authenticate") from exc


def reseal(keys: KeyRing, aad: str, blob: bytes) -> bytes | None:
    """The blob sealed under the active KEK, or None when it already is."""
    if int.from_bytes(bytes(blob)[:2], "big") == keys.active_kek:
        return None
    return seal(keys, aad, open_sealed(keys, aad, blob))
