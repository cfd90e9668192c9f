"""Hypothesis properties: input validation, envelope encryption, and minimization.

- every validator either returns a normalised value (idempotent, within its bounds, free of
  control characters) or raises BadInput, for any input at all;
- envelope encryption round-trips any text and binds each ciphertext to member and field;
- the grant rule never lets a field outside (granted fields + consented optional fields) and
  the adapter's declared fields through, and a partner event built from a grant holds only it.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core import validation as v
from api.core.errors import BadInput
from api.models.enums import LegalBasis, MemberStatus, PartnerStatus, PersonalField
from api.security.envelope import (
    DataKey,
    UndecryptableError,
    _unwrap_raw,
    new_data_key,
    rewrap,
    unwrap,
)
from api.sharing.grants import (
    Grant,
    MemberFacts,
    PartnerState,
    grant_for,
    partner_purpose,
    receivable,
)
from partners.base import PartnerEvent, SharedMember

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

anything = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F)),  # control characters
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.from_regex(r"[A-Za-z0-9._%+-]{1,70}@[A-Za-z0-9-]{1,70}(\.[A-Za-z]{2,10}){1,3}",
                  fullmatch=True),
    st.from_regex(r"\+?[0-9 ()-]{4,30}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True),
    st.none(), st.integers(), st.binary(max_size=20), st.lists(st.text(max_size=3), max_size=3),
)

TEXT_VALIDATORS = {
    "email": (v.validate_email, 254),
    "user_id": (v.validate_user_id, 32),
    "full_name": (v.validate_full_name, 200),
    "address": (v.validate_address, 500),
    "phone": (v.validate_phone, 24),
}


def _clean(value: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cs", "Co") for ch in value)


@pytest.mark.parametrize("name", sorted(TEXT_VALIDATORS))
@FAST
@given(value=anything)
def test_text_validators_normalise_or_raise_bad_input(name, value):
    validate, max_len = TEXT_VALIDATORS[name]
    try:
        out = validate(value)
    except BadInput as exc:
        assert exc.code == "BAD_USER_INPUT" and exc.extensions.get("field")
        return
    assert isinstance(out, str) and 1 <= len(out) <= max_len and _clean(out)
    assert out == out.strip() and unicodedata.is_normalized("NFC", out)
    assert validate(out) == out  # idempotent: stored values re-validate unchanged


@FAST
@given(value=anything, user_id=st.text(max_size=40), email=st.text(max_size=60))
def test_password_validator_accepts_or_raises_bad_input(value, user_id, email):
    try:
        out = v.validate_password(value, user_id=user_id, email=email)
    except BadInput:
        return
    assert out == value and 12 <= len(value) <= 128


@FAST
@given(value=st.dates(), today=st.dates(min_value=date(2000, 1, 1)))
def test_date_of_birth_validator_accepts_or_raises_bad_input(value, today):
    try:
        out = v.validate_date_of_birth(value, today)
    except BadInput:
        assert value > today or value.year < 1900
        return
    assert out == value and date(1900, 1, 1) <= out <= today


@FAST
@given(value=anything, max_len=st.integers(1, 50))
def test_clean_text_never_raises_anything_but_bad_input(value, max_len):
    try:
        out = v.clean_text(value, field="x", max_len=max_len)
    except BadInput:
        return
    assert len(out) <= max_len and _clean(out)


# --- envelope encryption -------------------------------------------------------------------

OWNER = st.uuids().map(str)
FIELD = st.sampled_from(["user_id", "email", "full_name", "date_of_birth", "phone", "address"])
PLAIN = st.text(alphabet=st.characters(codec="utf-8"), max_size=500)


@FAST
@given(owner=OWNER, field=FIELD, text=PLAIN)
def test_envelope_round_trip(keys, owner, field, text):
    key, wrapped, version = new_data_key(keys, owner)
    blob = key.encrypt(field, text)
    assert unwrap(keys, wrapped, version, owner).decrypt(field, blob) == text
    assert len(text.encode()) < 8 or text.encode() not in blob


@FAST
@given(owner=OWNER, other=OWNER, field=FIELD, other_field=FIELD, text=PLAIN,
       flip=st.integers(min_value=0))
def test_envelope_binding_and_tamper_detection(keys, owner, other, field, other_field, text,
                                               flip):
    key, wrapped, version = new_data_key(keys, owner)
    blob = key.encrypt(field, text)
    if other_field != field:
        with pytest.raises(UndecryptableError):
            key.decrypt(other_field, blob)
    if other != owner:
        raw = _unwrap_raw(keys, wrapped, version, owner)
        with pytest.raises(UndecryptableError):  # same key bytes, another member's binding
            DataKey(raw, other).decrypt(field, blob)
        with pytest.raises(UndecryptableError):
            unwrap(keys, wrapped, version, other)
    position = flip % (len(blob) * 8)
    tampered = bytearray(blob)
    tampered[position // 8] ^= 1 << (position % 8)
    with pytest.raises(UndecryptableError):
        key.decrypt(field, bytes(tampered))


@FAST
@given(owner=OWNER, text=PLAIN)
def test_rewrap_keeps_the_data_key(keys, owner, text):
    import dataclasses

    key, wrapped, version = new_data_key(keys, owner)
    blob = key.encrypt("email", text)
    ring = dataclasses.replace(keys, keks={**keys.keks, 9: secrets.token_bytes(32)},
                               active_kek=9)
    rewrapped, new_version = rewrap(ring, wrapped, version, owner)
    assert new_version == 9 and rewrapped != wrapped
    assert unwrap(ring, rewrapped, new_version, owner).decrypt("email", blob) == text


# --- minimization --------------------------------------------------------------------------

FIELDS = st.frozensets(st.sampled_from(list(PersonalField)))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def partner_states(draw) -> PartnerState:
    pid = str(draw(st.uuids()))
    return PartnerState(
        id=pid, name="P", kind="OTHER",
        purpose=draw(st.sampled_from(["order_fulfillment", "research", "marketing",
                                      "membership", f"partner:{pid}"])),
        legal_basis=draw(st.sampled_from(list(LegalBasis))), adapter="jsonl",
        status=draw(st.sampled_from(list(PartnerStatus))), fields=draw(FIELDS),
        optional_fields=draw(FIELDS), accepts=draw(FIELDS), at=NOW)


@st.composite
def member_facts(draw, partner: PartnerState) -> MemberFacts:
    pool = ["order_fulfillment", "research", "marketing", partner.purpose,
            partner_purpose(partner.id), partner_purpose("someone-else")]
    return MemberFacts(str(draw(st.uuids())), draw(st.sampled_from(list(MemberStatus))),
                       draw(st.booleans()), frozenset(draw(st.sets(st.sampled_from(pool)))))


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_a_grant_never_exceeds_fields_consent_and_adapter(data):
    partner = data.draw(partner_states())
    member = data.draw(member_facts(partner))
    grant = grant_for(partner, member)
    if grant is None:
        return
    assert partner.status == PartnerStatus.ACTIVE and member.status == MemberStatus.ACTIVE
    assert grant.fields and grant.fields <= partner.accepts
    allowed = set(partner.fields)
    if partner.consent_purpose in member.consents:
        allowed |= partner.optional_fields
    assert grant.fields <= allowed
    # what the profile bridge skips on: a field outside it is never granted to anyone
    assert grant.fields <= receivable(partner)
    if partner.legal_basis == LegalBasis.CONTRACT:
        assert member.has_purchase
    elif partner.legal_basis == LegalBasis.CONSENT:
        assert partner.purpose in member.consents
    else:
        pytest.fail(f"shared on basis {partner.legal_basis}")
    assert grant.purpose == partner.purpose and grant.legal_basis == partner.legal_basis


VALUES = {f: st.text(max_size=20) for f in PersonalField}


@settings(max_examples=300, deadline=None)
@given(granted=FIELDS, values=st.fixed_dictionaries({f.graphql: VALUES[f] for f in PersonalField}),
       extra=st.sampled_from(list(PersonalField)))
def test_an_event_holds_only_ref_and_granted_fields(granted, values, extra):
    grant = Grant(frozenset(granted), "order_fulfillment", LegalBasis.CONTRACT)
    names = {f.graphql for f in grant.fields}
    record = SharedMember.of({"ref": "r-1", **{k: v for k, v in values.items() if k in names}})
    event = PartnerEvent(id="e-1", type="member.shared", partner="P", at="2026-01-01T00:00:00Z",
                         member=record)
    as_json = event.to_dict()["member"]
    assert set(as_json) == {"ref"} | names
    if extra.graphql not in names:  # a field outside the grant cannot be read or smuggled in
        assert extra.graphql not in record
        with pytest.raises((AttributeError, KeyError)):
            record[extra.graphql]
        with pytest.raises(AttributeError):
            setattr(record, extra.graphql, "smuggled")
    with pytest.raises(ValueError):
        SharedMember.of({"ref": "r", "password_hash": "x"})
