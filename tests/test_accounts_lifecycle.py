"""Member accounts over the real HTTP app and a real SMTP server (aiosmtpd): email
verification, email change, password reset and change, sessions, case-insensitive ids."""

from __future__ import annotations

import re
import uuid
from email.message import Message
from typing import Any

import pytest

from api.members.mail import send_pending
from api.models.member import Member
from api.models.onboarding import ImportedMember
from tests import helpers_rights
from tests.conftest import LOGIN, PASSWORD, error_code, register_member

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures

ME = "{ me { email emailVerified pendingEmail } }"
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) }"
RESEND = "mutation { resendEmailVerification }"
UPDATE_EMAIL = "mutation($e: String) { updateProfile(input: {email: $e}) { email pendingEmail } }"
ASK_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
CHANGE = ("mutation($c: String!, $n: String!) "
          "{ changePassword(currentPassword: $c, newPassword: $n) }")
SESSIONS = "{ me { sessions { id createdAt lastUsedAt userAgent current } } }"
REVOKE = "mutation($id: ID!) { revokeSession(id: $id) }"
EVERYWHERE = "mutation { signOutEverywhere }"
REFRESH = "mutation($t: String!) { refresh(refreshToken: $t) { accessToken } }"
NEW_PASSWORD = "a brand new passphrase 77"
INVALID = "this link is not valid (it may have expired or been used); ask for a new one"


def _text(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def _token(mail: Message, action: str) -> str:
    found = re.search(rf"http://localhost:8000/account/{action}\?token=([A-Za-z0-9_\-]+)",
                      _text(mail))
    assert found, _text(mail)
    return found.group(1)


async def _mails(rt: Any, smtp: Any, address: str) -> list[Message]:
    await send_pending(rt)
    return smtp.to(address)


async def _verify_registration(gql: Any, rt: Any, smtp: Any, address: str) -> None:
    [mail] = [m for m in await _mails(rt, smtp, address)
              if m["X-Consentry-Kind"] == "account.verify_email"]
    assert (await gql(VERIFY, {"t": _token(mail, "verify-email")}))["data"] == {
        "verifyEmail": True}


async def test_registration_mails_a_link_that_verifies_the_address_once(gql, mail_rt, smtp,
                                                                        member, clock):
    assert (await gql(ME, token=member.token))["data"]["me"] == {
        "email": "alice@example.org", "emailVerified": False, "pendingEmail": None}
    [mail] = await _mails(mail_rt, smtp, "alice@example.org")
    assert mail["Subject"] == "Consentry Clinic: please confirm your email address"
    assert mail.get_content_type() == "text/plain"
    body = _text(mail)
    assert "created a member account with this address at Consentry Clinic" in body
    assert "You receive this message because this address was given for a member account" in body
    token = _token(mail, "verify-email")
    assert (await gql(VERIFY, {"t": token}))["data"] == {"verifyEmail": True}
    assert (await gql(ME, token=member.token))["data"]["me"]["emailVerified"] is True
    used = await gql(VERIFY, {"t": token})
    tampered = await gql(VERIFY, {"t": token[:-2] + ("AA" if token[-2:] != "AA" else "BB")})
    for body in (used, tampered):
        assert error_code(body) == "BAD_USER_INPUT"
        assert body["errors"][0]["message"] == INVALID


async def test_a_verification_link_expires_after_seven_days(gql, mail_rt, smtp, member, clock):
    [mail] = await _mails(mail_rt, smtp, "alice@example.org")
    clock.advance(days=7, seconds=1)
    body = await gql(VERIFY, {"t": _token(mail, "verify-email")})
    assert error_code(body) == "BAD_USER_INPUT" and body["errors"][0]["message"] == INVALID


async def test_resend_mails_a_new_link_and_is_rate_limited(gql, mail_rt, smtp, member):
    for _ in range(5):
        assert (await gql(RESEND, token=member.token))["data"] == {
            "resendEmailVerification": True}
    assert len(await _mails(mail_rt, smtp, "alice@example.org")) == 6
    body = await gql(RESEND, token=member.token)
    assert error_code(body) == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfter"] > 0


async def test_an_email_change_answers_the_same_for_a_free_and_a_taken_address(
        gql, mail_rt, smtp, member, other_member):
    free = await gql(UPDATE_EMAIL, {"e": "alice.new@example.org"}, token=member.token)
    taken = await gql(UPDATE_EMAIL, {"e": "BOB@example.org"}, token=member.token)
    assert free == {"data": {"updateProfile": {"email": "alice@example.org",
                                               "pendingEmail": "alice.new@example.org"}}}
    assert taken == {"data": {"updateProfile": {"email": "alice@example.org",
                                                "pendingEmail": "BOB@example.org"}}}
    await send_pending(mail_rt)
    [link] = smtp.to("alice.new@example.org")
    assert "asked to use this address for their member account" in _text(link)
    [notice] = smtp.to("BOB@example.org")  # bob is told; alice learns nothing
    assert notice["Subject"] == "Consentry Clinic: your address was given for another account"
    assert "token=" not in _text(notice)
    # The link to the first address was superseded by the second change.
    body = await gql(VERIFY, {"t": _token(link, "verify-email")})
    assert error_code(body) == "BAD_USER_INPUT"
    await gql(UPDATE_EMAIL, {"e": "alice.new@example.org"}, token=member.token)
    await send_pending(mail_rt)
    latest = smtp.to("alice.new@example.org")[-1]
    assert (await gql(VERIFY, {"t": _token(latest, "verify-email")}))["data"] == {
        "verifyEmail": True}
    assert (await gql(ME, token=member.token))["data"]["me"] == {
        "email": "alice.new@example.org", "emailVerified": True, "pendingEmail": None}


async def test_an_email_change_to_the_same_address_in_another_case_changes_nothing(
        gql, mail_rt, smtp, member):
    body = await gql(UPDATE_EMAIL, {"e": "ALICE@example.org"}, token=member.token)
    assert body == {"data": {"updateProfile": {"email": "alice@example.org",
                                               "pendingEmail": None}}}
    bad = await gql(UPDATE_EMAIL, {"e": "not an address"}, token=member.token)
    assert error_code(bad) == "BAD_USER_INPUT"


async def test_password_reset_end_to_end(gql, mail_rt, smtp, member, clock):
    await _verify_registration(gql, mail_rt, smtp, "alice@example.org")
    second = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]
    for address in ("ALICE@example.org", "nobody@example.org"):
        assert (await gql(ASK_RESET, {"e": address}))["data"] == {"requestPasswordReset": True}
    [mail] = [m for m in await _mails(mail_rt, smtp, "alice@example.org")
              if m["X-Consentry-Kind"] == "account.password_reset"]
    assert smtp.to("nobody@example.org") == []
    assert mail["Subject"] == "Consentry Clinic: choose a new password"
    token = _token(mail, "reset-password")
    weak = await gql(RESET, {"t": token, "p": "short"})
    assert error_code(weak) == "BAD_USER_INPUT"
    assert weak["errors"][0]["message"] == "password must be 12 to 128 characters"
    assert (await gql(RESET, {"t": token, "p": NEW_PASSWORD}))["data"] == {"resetPassword": True}
    # Every session ended: access tokens at once, refresh tokens too.
    for session in (member.token, second["accessToken"]):
        assert error_code(await gql(ME, token=session)) == "UNAUTHENTICATED"
    assert error_code(await gql(REFRESH, {"t": second["refreshToken"]})) == "UNAUTHENTICATED"
    assert error_code(await gql(LOGIN, {"u": "alice", "p": PASSWORD})) == "UNAUTHENTICATED"
    assert "errors" not in await gql(LOGIN, {"u": "alice", "p": NEW_PASSWORD})
    again = await gql(RESET, {"t": token, "p": "yet another passphrase 9"})
    assert error_code(again) == "BAD_USER_INPUT" and again["errors"][0]["message"] == INVALID


async def test_a_reset_link_expires_after_thirty_minutes(gql, mail_rt, smtp, member, clock):
    await _verify_registration(gql, mail_rt, smtp, "alice@example.org")
    await gql(ASK_RESET, {"e": "alice@example.org"})
    [mail] = [m for m in await _mails(mail_rt, smtp, "alice@example.org")
              if m["X-Consentry-Kind"] == "account.password_reset"]
    clock.advance(minutes=30, seconds=1)
    body = await gql(RESET, {"t": _token(mail, "reset-password"), "p": NEW_PASSWORD})
    assert error_code(body) == "BAD_USER_INPUT" and body["errors"][0]["message"] == INVALID


async def test_no_reset_mail_to_an_unverified_address_and_requests_are_rate_limited(
        gql, mail_rt, smtp, member):
    for _ in range(5):
        assert (await gql(ASK_RESET, {"e": "alice@example.org"}))["data"] == {
            "requestPasswordReset": True}
    kinds = [m["X-Consentry-Kind"] for m in await _mails(mail_rt, smtp, "alice@example.org")]
    assert kinds == ["account.verify_email"]
    body = await gql(ASK_RESET, {"e": "Alice@Example.org"})
    assert error_code(body) == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfter"] > 0


async def test_an_imported_member_chooses_a_password_through_the_reset(gql, mail_rt, smtp,
                                                                       member, clock):
    await ImportedMember.create(member_id=member.id, file_sha256="0" * 64,
                                imported_at=clock.now())
    await gql(ASK_RESET, {"e": "alice@example.org"})
    [mail] = [m for m in await _mails(mail_rt, smtp, "alice@example.org")
              if m["X-Consentry-Kind"] == "account.password_reset"]
    assert (await gql(RESET, {"t": _token(mail, "reset-password"), "p": NEW_PASSWORD}))[
        "data"] == {"resetPassword": True}
    row = await ImportedMember.get(member_id=member.id)
    assert row.password_set_at == clock.now()
    assert (await Member.get(id=member.id)).email_verified_at == clock.now()


async def test_change_password_ends_every_other_session(gql, member):
    other = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]
    wrong = await gql(CHANGE, {"c": "not my password at all", "n": NEW_PASSWORD},
                      token=member.token)
    assert error_code(wrong) == "BAD_USER_INPUT"
    weak = await gql(CHANGE, {"c": PASSWORD, "n": "alice-alice-alice"}, token=member.token)
    assert weak["errors"][0]["message"] == "password must not contain your user id or email"
    assert (await gql(CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD}, token=member.token))[
        "data"] == {"changePassword": True}
    assert "errors" not in await gql(ME, token=member.token)
    assert error_code(await gql(ME, token=other["accessToken"])) == "UNAUTHENTICATED"
    assert error_code(await gql(REFRESH, {"t": other["refreshToken"]})) == "UNAUTHENTICATED"
    assert "errors" not in await gql(REFRESH, {"t": member.refresh_token})


async def test_sessions_are_listed_and_ended_one_or_all(gql, client, member):
    response = await client.post("/graphql", json={"query": LOGIN, "variables": {
        "u": "alice", "p": PASSWORD}}, headers={"user-agent": "Phone Browser 1.0"})
    phone = response.json()["data"]["login"]
    listed = (await gql(SESSIONS, token=member.token))["data"]["me"]["sessions"]
    assert len(listed) == 2
    mine = [s for s in listed if s["current"]]
    [phone_session] = [s for s in listed if not s["current"]]
    assert len(mine) == 1 and phone_session["userAgent"] == "Phone Browser 1.0"
    other = await register_member(gql, "bob")
    body = await gql(REVOKE, {"id": phone_session["id"]}, token=other.token)
    assert error_code(body) == "NOT_FOUND"  # not bob's session
    assert error_code(await gql(REVOKE, {"id": str(uuid.uuid4())}, token=member.token)) == (
        "NOT_FOUND")
    assert (await gql(REVOKE, {"id": phone_session["id"]}, token=member.token))["data"] == {
        "revokeSession": True}
    assert error_code(await gql(ME, token=phone["accessToken"])) == "UNAUTHENTICATED"
    assert [s["id"] for s in (await gql(SESSIONS, token=member.token))["data"]["me"][
        "sessions"]] == [mine[0]["id"]]
    assert (await gql(EVERYWHERE, token=member.token))["data"] == {"signOutEverywhere": True}
    assert error_code(await gql(ME, token=member.token)) == "UNAUTHENTICATED"
    assert error_code(await gql(REFRESH, {"t": member.refresh_token})) == "UNAUTHENTICATED"
    assert "errors" not in await gql(ME, token=other.token)


async def test_logout_ends_the_access_token_too(gql, member):
    logout = "mutation($t: String!) { logout(refreshToken: $t) }"
    assert (await gql(logout, {"t": member.refresh_token}))["data"] == {"logout": True}
    assert error_code(await gql(ME, token=member.token)) == "UNAUTHENTICATED"


async def test_user_ids_and_emails_are_one_account_whatever_their_case(gql, member):
    body = await gql("""mutation($input: RegisterInput!) { register(input: $input) { role } }""",
                     {"input": {"userId": "ALICE", "email": "someone@example.org",
                                "fullName": "Another Alice", "password": PASSWORD}})
    assert error_code(body) == "CONFLICT"
    body = await gql("""mutation($input: RegisterInput!) { register(input: $input) { role } }""",
                     {"input": {"userId": "carol", "email": "Alice@EXAMPLE.org",
                                "fullName": "Carol Example", "password": PASSWORD}})
    assert error_code(body) == "CONFLICT"
    login = await gql(LOGIN, {"u": "Alice", "p": PASSWORD})
    assert login["data"]["login"]["member"]["id"] == member.id


@pytest.mark.parametrize("field", ["token"])
async def test_garbage_tokens_are_bad_input_not_errors(gql, field):
    for token in ("", "x" * 300, "../../etc"):
        body = await gql(VERIFY, {"t": token})
        assert error_code(body) == "BAD_USER_INPUT" and body["errors"][0]["message"] == INVALID


async def test_every_mail_names_the_clinic_and_says_why(mail_rt, smtp, member):
    from api.members.notifications import notify

    await notify(mail_rt, None, member_id=member.id, kind="policy.announced",
                 subject="A new policy", body="A new policy version takes effect in 30 days.")
    [mail] = [m for m in await _mails(mail_rt, smtp, "alice@example.org")
              if m["X-Consentry-Kind"] == "policy.announced"]
    assert mail.get_content_type() == "text/plain"
    assert _text(mail).replace("\r\n", "\n").endswith(
        "\n-- \nConsentry Clinic\nYou receive this message because you have (or had) a member "
        "account with us. It is a service message, not advertising. We never ask for your "
        "password by mail.\n")
