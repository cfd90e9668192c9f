"""Keyed blind indexes: find a member by user id or email without storing either in plaintext."""

from __future__ import annotations

from api.security.keys import KeyRing

__all__ = ["blind_index"]


def blind_index(keys: KeyRing, kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised value under a per-kind sub-key, hex encoded."""
    normalised = value.strip().casefold() if kind == "email" else value.strip()
    return keys.mac(f"blind/{kind}", normalised.encode("utf-8")).hex()
