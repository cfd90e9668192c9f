"""The key ring's sub-keys and KEK ciphers: made once per ring, and never outliving its keys.

Stored blind indexes, receipt subjects and partner refs are compared with values computed
later, so the derivation may never change: the expected values below are HMAC-SHA256 under
``HMAC(index key, "consentry/" + purpose)``, written out as literals.
"""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.consent.receipts import subject_ref
from api.security.blind_index import blind_index
from api.security.envelope import UndecryptableError, new_data_key, unwrap
from api.security.keys import KeyRing
from api.sharing.refs import partner_ref

MEMBER = "00000000-0000-4000-8000-000000000001"


def _ring(index_key: bytes) -> KeyRing:
    return KeyRing({1: b"\x01" * 32}, 1, Ed25519PrivateKey.generate(), index_key)


def test_pseudonyms_and_indexes_keep_their_derivation():
    ring = _ring(bytes(range(32)))
    for _ in range(2):  # the second round reads the remembered sub-keys
        assert subject_ref(ring, MEMBER) == "s_602608260a258be6b85de86ab7c82a10"
        assert partner_ref(ring, "p1", MEMBER) == "m_2fd6a95fc2994aeddf624723bc0803e7"
        assert blind_index(ring, "email", " Alice@Example.org ") == (
            "a42c521f388ae25716251bf04ac0d78330a71c20bbd3fcee510d7bf8e6e991ed")


def test_a_ring_with_another_index_key_derives_afresh():
    ring = _ring(bytes(range(32)))
    subject_ref(ring, MEMBER)
    other = dataclasses.replace(ring, index_key=bytes(32))
    assert subject_ref(other, MEMBER) == "s_568ea29b8d5df24fb343274350a165e7"


def test_a_ring_without_the_wrapping_kek_cannot_unwrap():
    ring = _ring(bytes(32))
    _, wrapped, version = new_data_key(ring, MEMBER)
    assert unwrap(ring, wrapped, version, MEMBER).owner == MEMBER
    retired = dataclasses.replace(ring, keks={2: b"\x02" * 32}, active_kek=2)
    with pytest.raises(UndecryptableError, match="not loaded"):
        unwrap(retired, wrapped, version, MEMBER)
    swapped = dataclasses.replace(ring, keks={1: b"\x03" * 32})  # same version, other key
    with pytest.raises(UndecryptableError, match="does not unwrap"):
        unwrap(swapped, wrapped, version, MEMBER)
