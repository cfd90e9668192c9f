"""Pseudonymous member refs: stable for one partner, different between partners, so partners
cannot join their data on a shared identifier (keyed HMAC; nothing to store)."""

from __future__ import annotations

from api.security.keys import KeyRing

__all__ = ["partner_ref"]


def partner_ref(keys: KeyRing, partner_id: str, member_id: str) -> str:
    return "m_" + keys.mac("partner-ref", f"{partner_id}/{member_id}".encode()).hex()[:32]
