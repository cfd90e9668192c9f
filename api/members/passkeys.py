"""Passkeys: WebAuthn registration and sign-in for members (py_webauthn does the verifying).

Each ceremony's challenge is random, kept only as a SHA-256, answers once (finishing deletes its
row; whoever deletes it owns it) and expires after ``CHALLENGE_SECONDS``. The answer names its
challenge inside clientDataJSON, so no handle travels beside it. The expected origin and
relying-party id come from the settings (``public_url``, ``webauthn_rp_id``). Attestation is
not asked for (``none``): the key proves possession, not make. User verification is required:
a passkey replaces the password, so it must be a factor of its own.

Refusals do not say why (unknown, used or expired challenge, a signature that does not verify,
a key of another member): a caller probing learns nothing but "start again".
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from api.core.errors import BadInput, NotFound, Unauthenticated
from api.core.validation import clean_text
from api.members import dormancy, records, sessions, user_ids
from api.members.sessions import TokenPair
from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.passkeys import Passkey, PasskeyChallenge
from api.platform import audit
from api.platform.runtime import Runtime

__all__ = ["PasskeyView", "CHALLENGE_SECONDS", "MAX_PASSKEYS", "begin_registration",
           "finish_registration", "begin_login", "finish_login", "remove", "list_for",
           "destroy_for"]

CHALLENGE_SECONDS = 300
MAX_PASSKEYS = 10
DEFAULT_NAME = "Passkey"
_REGISTER, _LOGIN = "register", "login"
_REGISTER_REFUSED = "the passkey could not be registered; start again"
_LOGIN_REFUSED = "passkey sign-in failed; start again"
# What parsing and verifying a hostile credential can raise (base64, CBOR and key errors are
# ValueErrors); anything else is a bug and should surface as one.
_CREDENTIAL_ERRORS = (WebAuthnException, ValueError, TypeError, KeyError, IndexError)


@dataclass(frozen=True)
class PasskeyView:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _new_challenge(rt: Runtime, purpose: str, member_id: uuid.UUID | None) -> bytes:
    now = rt.now()
    await PasskeyChallenge.filter(expires_at__lte=now).delete()  # keeps the table small
    challenge = secrets.token_bytes(32)
    await PasskeyChallenge.create(challenge_hash=_sha256(challenge), purpose=purpose,
                                  member_id=member_id,
                                  expires_at=now + timedelta(seconds=CHALLENGE_SECONDS))
    return challenge


async def _consume(rt: Runtime, challenge: bytes, purpose: str) -> PasskeyChallenge | None:
    """The pending challenge, now used up; None when unknown, expired, used or raced."""
    row = await PasskeyChallenge.get_or_none(challenge_hash=_sha256(challenge), purpose=purpose)
    if row is None or not await PasskeyChallenge.filter(
            challenge_hash=row.challenge_hash).delete():
        return None
    return row if row.expires_at > rt.now() else None


def _options_json(options: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return parsed


def _transports(names: list[str]) -> list[AuthenticatorTransport]:
    return [AuthenticatorTransport(n) for n in names
            if n in AuthenticatorTransport._value2member_map_]


def _descriptors(keys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=k.credential_id, transports=_transports(k.transports))
            for k in keys]


def _credential(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput("credential must be the authenticator's answer as a JSON object",
                       field="credential")
    return value


async def begin_registration(rt: Runtime, member_id: str) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions (JSON form) for a new passkey of this member."""
    view = await records.get_view(rt, member_id)
    owner = uuid.UUID(member_id)
    existing = await Passkey.filter(member_id=owner)
    if len(existing) >= MAX_PASSKEYS:
        raise BadInput(f"a member holds at most {MAX_PASSKEYS} passkeys; remove one first")
    options = generate_registration_options(
        rp_id=rt.settings.webauthn_rp, rp_name=rt.settings.controller, user_name=view.user_id,
        user_id=owner.bytes, challenge=await _new_challenge(rt, _REGISTER, owner),
        timeout=CHALLENGE_SECONDS * 1000, exclude_credentials=_descriptors(existing),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED))
    return _options_json(options)


async def finish_registration(rt: Runtime, member_id: str, credential: object,
                              name: str | None) -> PasskeyView:
    label = clean_text(name, field="name", max_len=64) if name is not None else DEFAULT_NAME
    answer = _credential(credential)
    owner = uuid.UUID(member_id)
    try:
        parsed = parse_registration_credential_json(answer)
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
    except _CREDENTIAL_ERRORS:
        raise BadInput(_REGISTER_REFUSED, field="credential") from None
    row = await _consume(rt, challenge, _REGISTER)
    if row is None or row.member_id != owner:
        raise BadInput(_REGISTER_REFUSED, field="credential")
    try:
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge,
            expected_rp_id=rt.settings.webauthn_rp, expected_origin=rt.settings.webauthn_origin,
            require_user_verification=True)
    except _CREDENTIAL_ERRORS:
        raise BadInput(_REGISTER_REFUSED, field="credential") from None
    if await Passkey.filter(member_id=owner).count() >= MAX_PASSKEYS:
        raise BadInput(f"a member holds at most {MAX_PASSKEYS} passkeys; remove one first")
    key = await records.data_key(rt, member_id)
    now = rt.now()
    try:
        passkey = await Passkey.create(
            id=uuid.uuid4(), member_id=owner, credential_hash=_sha256(verified.credential_id),
            credential_id=verified.credential_id, public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=[t.value for t in parsed.response.transports or []],
            name_ct=key.encrypt("passkey_name", label), created_at=now)
    except IntegrityError:  # this authenticator's credential is registered already
        raise BadInput(_REGISTER_REFUSED, field="credential") from None
    await audit.record(rt, f"member:{member_id}", "member.passkey_add", member_id,
                       {"passkey": str(passkey.id)})
    return PasskeyView(str(passkey.id), label, now, None)


async def begin_login(rt: Runtime, user_id: str | None) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions (JSON form). With a user id, that member's passkeys are
    allowed (and only theirs will be accepted); without, any discoverable credential.

    An unknown user id, or one without passkeys, gets a made-up credential id derived from the
    user id (stable, so asking twice gives the same answer): the options do not tell who exists.
    """
    bound: uuid.UUID | None = None
    allow: list[PublicKeyCredentialDescriptor] = []
    if user_id is not None:
        user_id = clean_text(user_id, field="userId", max_len=64)
        member = await user_ids.find(rt, user_id)  # Alice and alice: one account
        bound = member.id if member and member.status != MemberStatus.WITHDRAWN else uuid.uuid4()
        allow = _descriptors(await Passkey.filter(member_id=bound).order_by("created_at"))
        if not allow:
            decoy = rt.keys.mac("passkey-decoy", user_id.casefold().encode())
            allow = [PublicKeyCredentialDescriptor(id=decoy)]
    options = generate_authentication_options(
        rp_id=rt.settings.webauthn_rp, challenge=await _new_challenge(rt, _LOGIN, bound),
        timeout=CHALLENGE_SECONDS * 1000, allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED)
    return _options_json(options)


async def _verified_passkey(rt: Runtime, answer: dict[str, Any]) -> Passkey:
    try:
        parsed = parse_authentication_credential_json(answer)
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
    except _CREDENTIAL_ERRORS:
        raise Unauthenticated(_LOGIN_REFUSED) from None
    row = await _consume(rt, challenge, _LOGIN)  # used up whatever follows
    passkey = await Passkey.get_or_none(credential_hash=_sha256(parsed.raw_id))
    if row is None or passkey is None:
        raise Unauthenticated(_LOGIN_REFUSED)
    if row.member_id is not None and row.member_id != passkey.member_id:
        raise Unauthenticated(_LOGIN_REFUSED)
    handle = parsed.response.user_handle
    if handle is not None and handle != passkey.member_id.bytes:
        raise Unauthenticated(_LOGIN_REFUSED)
    try:
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge,
            expected_rp_id=rt.settings.webauthn_rp, expected_origin=rt.settings.webauthn_origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
    except _CREDENTIAL_ERRORS:
        raise Unauthenticated(_LOGIN_REFUSED) from None
    # Conditional on the count read: of two answers racing with one counter value, one wins.
    if not await Passkey.filter(id=passkey.id, sign_count=passkey.sign_count).update(
            sign_count=verified.new_sign_count, last_used_at=rt.now()):
        raise Unauthenticated(_LOGIN_REFUSED)
    return passkey


async def finish_login(rt: Runtime, credential: object,
                       user_agent: str | None = None) -> TokenPair:
    """Sign in with a passkey: the same session as a password sign-in (``auth.login``)."""
    if not isinstance(credential, dict):
        raise Unauthenticated(_LOGIN_REFUSED)
    passkey = await _verified_passkey(rt, credential)
    member = await Member.get_or_none(id=passkey.member_id)
    if member is None or member.status == MemberStatus.WITHDRAWN:
        raise Unauthenticated(_LOGIN_REFUSED)
    await Member.filter(id=member.id).update(last_active_at=rt.now())
    if member.status == MemberStatus.DORMANT:
        await dormancy.reactivate(rt, str(member.id))
    return await sessions.start(rt, "MEMBER", str(member.id), user_agent)


async def remove(rt: Runtime, member_id: str, passkey_id: str) -> bool:
    try:
        pid = uuid.UUID(str(passkey_id))
    except ValueError:
        raise BadInput("id is not a passkey id", field="id") from None
    if not await Passkey.filter(id=pid, member_id=uuid.UUID(member_id)).delete():
        raise NotFound("passkey not found")
    await audit.record(rt, f"member:{member_id}", "member.passkey_remove", member_id,
                       {"passkey": str(pid)})
    return True


async def destroy_for(member_id: str, conn: BaseDBAsyncClient) -> None:
    """Inside the destruction's transaction: the member's passkeys and pending challenges."""
    owner = uuid.UUID(member_id)
    await Passkey.filter(member_id=owner).using_db(conn).delete()
    await PasskeyChallenge.filter(member_id=owner).using_db(conn).delete()


async def list_for(rt: Runtime, member_id: str) -> list[PasskeyView]:
    rows = await Passkey.filter(member_id=uuid.UUID(member_id)).order_by("created_at", "id")
    if not rows:
        return []
    key = await records.data_key(rt, member_id)
    return [PasskeyView(str(r.id), key.decrypt("passkey_name", r.name_ct), r.created_at,
                        r.last_used_at) for r in rows]
