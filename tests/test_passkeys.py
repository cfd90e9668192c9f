"""Passkeys through the real HTTP app, answered by a software authenticator (tests/webauthn_soft.py):
registration, sign-in by user id and discoverable, and the refusals (replayed or expired
challenge, wrong origin, removed passkey, another member's passkey, a counter that went back)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.members.dormancy import make_dormant
from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.passkeys import Passkey, PasskeyChallenge
from api.service.asgi import create_app
from api.service.composition import with_settings
from tests.conftest import GQL, PASSWORD, Account, error_code
from tests.webauthn_soft import SoftAuthenticator, b64url

BEGIN_REG = "mutation { beginPasskeyRegistration }"
FINISH_REG = """mutation($c: JSON!, $n: String) {
  finishPasskeyRegistration(credential: $c, name: $n) { id name createdAt lastUsedAt } }"""
BEGIN_LOGIN = "mutation($u: String) { beginPasskeyLogin(userId: $u) }"
FINISH_LOGIN = """mutation($c: JSON!) {
  finishPasskeyLogin(credential: $c) { accessToken refreshToken expiresIn role member { id userId } } }"""
REMOVE = "mutation($id: ID!) { removePasskey(id: $id) }"
MY_PASSKEYS = "{ me { passkeys { id name createdAt lastUsedAt } } }"
REFUSED_LOGIN = "passkey sign-in failed; start again"
REFUSED_REG = "the passkey could not be registered; start again"

pytestmark = pytest.mark.both_graphql_paths  # JSON in and out through both GraphQL paths


async def _register(gql: GQL, account: Account, device: SoftAuthenticator,
                    name: str | None = "Laptop") -> dict[str, Any]:
    options = (await gql(BEGIN_REG, token=account.token))["data"]["beginPasskeyRegistration"]
    body = await gql(FINISH_REG, {"c": device.create(options), "n": name}, token=account.token)
    assert "errors" not in body, body
    return body["data"]["finishPasskeyRegistration"]


async def _options(gql: GQL, user_id: str | None) -> dict[str, Any]:
    body = await gql(BEGIN_LOGIN, {"u": user_id})
    assert "errors" not in body, body
    return body["data"]["beginPasskeyLogin"]


async def test_register_then_sign_in_by_user_id(gql, member, clock):
    options = (await gql(BEGIN_REG, token=member.token))["data"]["beginPasskeyRegistration"]
    assert options["rp"] == {"id": "localhost", "name": "Consentry Clinic"}
    assert options["user"]["name"] == "alice"
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["excludeCredentials"] == []
    device = SoftAuthenticator()
    body = await gql(FINISH_REG, {"c": device.create(options), "n": "Laptop"}, token=member.token)
    created = body["data"]["finishPasskeyRegistration"]
    assert created["name"] == "Laptop" and created["lastUsedAt"] is None

    login_options = await _options(gql, "alice")
    assert login_options["rpId"] == "localhost"
    assert login_options["userVerification"] == "required"
    assert [c["id"] for c in login_options["allowCredentials"]] == [b64url(device.credentials[0].id)]
    body = await gql(FINISH_LOGIN, {"c": device.get(login_options)})
    assert "errors" not in body, body
    payload = body["data"]["finishPasskeyLogin"]
    assert payload["role"] == "MEMBER" and payload["expiresIn"] == 900
    assert payload["member"] == {"id": member.id, "userId": "alice"}

    mine = (await gql(MY_PASSKEYS, token=payload["accessToken"]))["data"]["me"]["passkeys"]
    assert [(p["id"], p["name"]) for p in mine] == [(created["id"], "Laptop")]
    assert mine[0]["lastUsedAt"] is not None
    refreshed = await gql("mutation($t: String!) { refresh(refreshToken: $t) { role } }",
                          {"t": payload["refreshToken"]})
    assert refreshed["data"]["refresh"]["role"] == "MEMBER"


async def test_the_user_id_is_matched_without_regard_to_case(gql, member):
    device = SoftAuthenticator()
    await _register(gql, member, device)
    options = await _options(gql, "ALICE")
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(device.credentials[0].id)]
    body = await gql(FINISH_LOGIN, {"c": device.get(options)})
    assert body["data"]["finishPasskeyLogin"]["member"]["id"] == member.id
    upper, lower = await _options(gql, "Nobody"), await _options(gql, "nobody")
    assert upper["allowCredentials"] == lower["allowCredentials"]


async def test_discoverable_sign_in_without_user_id(gql, member):
    device = SoftAuthenticator()
    await _register(gql, member, device, name=None)
    options = await _options(gql, None)
    assert options["allowCredentials"] == []
    body = await gql(FINISH_LOGIN, {"c": device.get(options)})
    assert body["data"]["finishPasskeyLogin"]["member"]["id"] == member.id
    names = (await gql(MY_PASSKEYS, token=member.token))["data"]["me"]["passkeys"]
    assert [p["name"] for p in names] == ["Passkey"]


async def test_a_challenge_answers_once(gql, member):
    device = SoftAuthenticator()
    options = (await gql(BEGIN_REG, token=member.token))["data"]["beginPasskeyRegistration"]
    answer = device.create(options)
    assert "errors" not in await gql(FINISH_REG, {"c": answer}, token=member.token)
    replay = await gql(FINISH_REG, {"c": device.create(options)}, token=member.token)
    assert error_code(replay) == "BAD_USER_INPUT"
    assert replay["errors"][0]["message"] == REFUSED_REG

    options = await _options(gql, "alice")
    first = device.get(options)
    assert "errors" not in await gql(FINISH_LOGIN, {"c": first})
    for again in (first, device.get(options)):  # the same answer, and a fresh signature
        body = await gql(FINISH_LOGIN, {"c": again})
        assert error_code(body) == "UNAUTHENTICATED"
        assert body["errors"][0]["message"] == REFUSED_LOGIN
    assert await PasskeyChallenge.all().count() == 0


async def test_an_expired_challenge_is_refused(gql, member, clock):
    device = SoftAuthenticator()
    await _register(gql, member, device)
    options = await _options(gql, "alice")
    clock.advance(seconds=301)
    body = await gql(FINISH_LOGIN, {"c": device.get(options)})
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == REFUSED_LOGIN

    options = (await gql(BEGIN_REG, token=member.token))["data"]["beginPasskeyRegistration"]
    clock.advance(seconds=301)
    body = await gql(FINISH_REG, {"c": device.create(options)}, token=member.token)
    assert error_code(body) == "BAD_USER_INPUT"


async def test_a_wrong_origin_is_refused(gql, member):
    device = SoftAuthenticator()
    options = (await gql(BEGIN_REG, token=member.token))["data"]["beginPasskeyRegistration"]
    body = await gql(FINISH_REG, {"c": device.create(options, origin="https://evil.example")},
                     token=member.token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["message"] == REFUSED_REG
    assert (await gql(MY_PASSKEYS, token=member.token))["data"]["me"]["passkeys"] == []

    device = SoftAuthenticator()
    await _register(gql, member, device)
    options = await _options(gql, "alice")
    body = await gql(FINISH_LOGIN, {"c": device.get(options, origin="http://localhost:8001")})
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == REFUSED_LOGIN


async def test_a_removed_passkey_is_refused(gql, member):
    device = SoftAuthenticator()
    created = await _register(gql, member, device)
    assert (await gql(REMOVE, {"id": created["id"]}, token=member.token))["data"] == {
        "removePasskey": True}
    assert (await gql(MY_PASSKEYS, token=member.token))["data"]["me"]["passkeys"] == []
    options = await _options(gql, None)
    body = await gql(FINISH_LOGIN, {"c": device.get(options, credential=device.credentials[0])})
    assert error_code(body) == "UNAUTHENTICATED"
    again = await gql(REMOVE, {"id": created["id"]}, token=member.token)
    assert error_code(again) == "NOT_FOUND"


async def test_another_members_passkey_does_not_sign_in_as_this_member(gql, member,
                                                                       other_member):
    alice_device, bob_device = SoftAuthenticator(), SoftAuthenticator()
    await _register(gql, member, alice_device)
    bob_key = await _register(gql, other_member, bob_device)
    # Bob may not remove Alice's passkey, nor Alice Bob's.
    body = await gql(REMOVE, {"id": bob_key["id"]}, token=member.token)
    assert error_code(body) == "NOT_FOUND"

    options = await _options(gql, "alice")
    answer = bob_device.get(options, credential=bob_device.credentials[0])
    body = await gql(FINISH_LOGIN, {"c": answer})
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == REFUSED_LOGIN
    # Bob's key signs in as Bob only, and says so in its user handle.
    options = await _options(gql, None)
    body = await gql(FINISH_LOGIN, {"c": bob_device.get(options)})
    assert body["data"]["finishPasskeyLogin"]["member"]["id"] == other_member.id


async def test_a_counter_that_does_not_increase_is_refused(gql, member):
    device = SoftAuthenticator()
    await _register(gql, member, device)
    assert "errors" not in await gql(FINISH_LOGIN, {"c": device.get(await _options(gql, None))})
    clone = device.get(await _options(gql, None), count=False)  # same count as last time
    body = await gql(FINISH_LOGIN, {"c": clone})
    assert error_code(body) == "UNAUTHENTICATED"


async def test_unknown_user_and_user_without_passkeys_get_the_same_shape(gql, member):
    unknown = await _options(gql, "nobody-here")
    again = await _options(gql, "nobody-here")
    without = await _options(gql, "alice")
    assert len(unknown["allowCredentials"]) == 1 and len(without["allowCredentials"]) == 1
    assert unknown["allowCredentials"] == again["allowCredentials"]
    assert unknown["challenge"] != again["challenge"]


async def test_bad_credentials_are_refused_with_codes(gql, member):
    for value in ("not an object", [1, 2], {"id": "x"}, {"id": "AA", "rawId": "AA",
                  "type": "public-key", "response": {"clientDataJSON": "%%%",
                                                     "attestationObject": "AA"}}):
        body = await gql(FINISH_REG, {"c": value}, token=member.token)
        assert error_code(body) == "BAD_USER_INPUT", body
        body = await gql(FINISH_LOGIN, {"c": value})
        assert error_code(body) == "UNAUTHENTICATED", body
    body = await gql(REMOVE, {"id": "not-a-uuid"}, token=member.token)
    assert error_code(body) == "BAD_USER_INPUT"
    device = SoftAuthenticator()
    options = (await gql(BEGIN_REG, token=member.token))["data"]["beginPasskeyRegistration"]
    body = await gql(FINISH_REG, {"c": device.create(options), "n": "x" * 65},
                     token=member.token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "name"


async def test_a_dormant_member_is_reactivated_and_a_withdrawn_one_refused(gql, rt, member):
    device = SoftAuthenticator()
    await _register(gql, member, device, name="Phone")
    assert await make_dormant(rt, member.id)
    body = await gql(FINISH_LOGIN, {"c": device.get(await _options(gql, "alice"))})
    assert body["data"]["finishPasskeyLogin"]["member"] == {"id": member.id, "userId": "alice"}
    assert (await Member.get(id=member.id)).status == MemberStatus.ACTIVE
    token = body["data"]["finishPasskeyLogin"]["accessToken"]
    names = (await gql(MY_PASSKEYS, token=token))["data"]["me"]["passkeys"]
    assert [p["name"] for p in names] == ["Phone"]

    withdrawn = await gql("mutation($p: String!) { withdrawMembership(password: $p) "
                          "{ destroyed } }", {"p": PASSWORD}, token=token)
    assert withdrawn["data"]["withdrawMembership"]["destroyed"] is True
    assert await Passkey.filter(member_id=member.id).count() == 0
    body = await gql(FINISH_LOGIN, {"c": device.get(await _options(gql, None))})
    assert error_code(body) == "UNAUTHENTICATED"


async def test_passkeys_are_shown_to_their_member_only(gql, member, admin):
    await _register(gql, member, SoftAuthenticator())
    body = await gql("query($id: ID!) { member(id: $id) { passkeys { id } } }",
                     {"id": member.id}, token=admin.token)
    assert error_code(body) == "FORBIDDEN"


async def test_passkey_sign_in_is_rate_limited_per_address(rt):
    limited = with_settings(rt, rate_limit_login_ip="3/minute")
    transport = httpx.ASGITransport(app=create_app(limited, manage_db=False),
                                    client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        gql = GQL(client)
        codes = [error_code(await gql(BEGIN_LOGIN, {"u": f"user{i}"})) for i in range(4)]
        assert codes == [None, None, None, "RATE_LIMITED"]
        codes = [error_code(await gql(FINISH_LOGIN, {"c": {}})) for _ in range(4)]
        assert codes == ["UNAUTHENTICATED"] * 3 + ["RATE_LIMITED"]
        body = await gql(FINISH_LOGIN, {"c": {}})
        assert isinstance(body["errors"][0]["extensions"]["retryAfter"], int)


async def test_the_export_lists_the_members_passkeys(gql, member):
    await _register(gql, member, SoftAuthenticator(), name="Work laptop")
    body = await gql("mutation { exportMyData { data } }", token=member.token)
    (key,) = body["data"]["exportMyData"]["data"]["passkeys"]
    assert (key["name"], key["createdAt"], key["lastUsedAt"]) == (
        "Work laptop", "2026-01-01T00:00:00+00:00", None)
