"""Admins: created by ``consentry admin create`` (password on stdin), signed in only with TOTP.

The CLI runs as a real subprocess against the test's own database and key directory, so the
admin it creates is the one the in-process app then signs in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from tests.conftest import LOGIN, PASSWORD, error_code

CONSENTRY = str(Path(sys.executable).with_name("consentry"))


def _env(rt) -> dict[str, str]:
    s = rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(CONSENTRY_DATA_DIR=str(s.data_dir), CONSENTRY_DATABASE_URL=s.main_url,
               CONSENTRY_VAULT_DATABASE_URL=s.vault_url)
    return env


def _admin_create(rt, user_id: str, password: str = PASSWORD,
                  email: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CONSENTRY, "admin", "create", "--user-id", user_id,
         "--email", email or f"{user_id}@clinic.example"],
        input=password + "\n", env=_env(rt), capture_output=True, text=True, timeout=120)


@pytest.fixture
async def cli_admin(rt) -> tuple[str, str]:
    """(user id, TOTP secret) of an admin made by the real command."""
    done = _admin_create(rt, "ops-admin")
    assert done.returncode == 0, done.stderr
    uri = done.stdout.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/")
    assert PASSWORD not in done.stdout + done.stderr
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    assert "Consentry" in uri and "ops-admin" in uri
    return "ops-admin", secret


async def _login(gql, user_id: str, otp: str | None, password: str = PASSWORD) -> dict:
    return await gql(LOGIN, {"u": user_id, "p": password, "otp": otp})


async def test_admin_created_by_the_cli_signs_in_with_totp(gql, clock, cli_admin):
    user_id, secret = cli_admin
    body = await _login(gql, user_id, pyotp.TOTP(secret).at(clock.now()))
    assert "errors" not in body, body
    login = body["data"]["login"]
    assert login["role"] == "ADMIN" and login["member"] is None
    assert "errors" not in await gql("{ members { edges { cursor } } }", token=login["accessToken"])


async def test_admin_login_without_a_code_is_refused(gql, cli_admin):
    body = await _login(gql, cli_admin[0], None)
    assert error_code(body) == "UNAUTHENTICATED"
    assert body["errors"][0]["extensions"].get("otpRequired") is True
    assert error_code(await _login(gql, cli_admin[0], "")) == "UNAUTHENTICATED"


@pytest.mark.parametrize("code", ["000000", "12345", "1234567", "abcdef", "١٢٣٤٥٦", " " * 6,
                                  "0" * 1000])
async def test_admin_login_with_a_wrong_code_is_refused(gql, clock, cli_admin, code):
    if code == "000000" and pyotp.TOTP(cli_admin[1]).verify(code, for_time=clock.now(),
                                                            valid_window=1):
        pytest.skip("the random secret happens to produce 000000 now")
    assert error_code(await _login(gql, cli_admin[0], code)) in ("UNAUTHENTICATED",
                                                                 "BAD_USER_INPUT")


async def test_admin_login_with_a_replayed_code_is_refused(gql, clock, cli_admin):
    user_id, secret = cli_admin
    code = pyotp.TOTP(secret).at(clock.now())
    assert "errors" not in await _login(gql, user_id, code)
    assert error_code(await _login(gql, user_id, code)) == "UNAUTHENTICATED"
    # An older code (previous step) is refused once a newer one was used.
    clock.advance(seconds=30)
    previous = code
    assert error_code(await _login(gql, user_id, previous)) == "UNAUTHENTICATED"
    assert "errors" not in await _login(gql, user_id, pyotp.TOTP(secret).at(clock.now()))


async def test_admin_login_with_a_stale_code_is_refused(gql, clock, cli_admin):
    user_id, secret = cli_admin
    stale = pyotp.TOTP(secret).at(clock.now())
    clock.advance(minutes=5)
    assert error_code(await _login(gql, user_id, stale)) == "UNAUTHENTICATED"


async def test_admin_login_with_a_wrong_password_and_a_valid_code_is_refused(gql, clock,
                                                                              cli_admin):
    user_id, secret = cli_admin
    body = await _login(gql, user_id, pyotp.TOTP(secret).at(clock.now()), "wrong password 123")
    assert error_code(body) == "UNAUTHENTICATED"
    assert "otpRequired" not in body["errors"][0].get("extensions", {})


async def test_admin_refresh_keeps_the_admin_role_and_member_tokens_stay_forbidden(gql, clock,
                                                                                  cli_admin,
                                                                                  member):
    user_id, secret = cli_admin
    login = (await _login(gql, user_id, pyotp.TOTP(secret).at(clock.now())))["data"]["login"]
    body = await gql("mutation($t: String!) { refresh(refreshToken: $t) { role accessToken } }",
                     {"t": login["refreshToken"]})
    assert body["data"]["refresh"]["role"] == "ADMIN"
    admin_token = body["data"]["refresh"]["accessToken"]
    query = f'{{ member(id: "{member.id}") {{ email }} }}'
    assert (await gql(query, token=admin_token))["data"]["member"]["email"] == "alice@example.org"
    assert error_code(await gql(query, token=member.token)) == "FORBIDDEN"
    assert error_code(await gql(query)) == "UNAUTHENTICATED"
    assert error_code(await gql("{ me { id } }", token=admin_token)) == "FORBIDDEN"


async def test_admin_create_refuses_a_weak_password_and_a_duplicate(rt, cli_admin):
    weak = _admin_create(rt, "weak-admin", password="short")
    assert weak.returncode != 0 and "otpauth://" not in weak.stdout
    assert "BAD_USER_INPUT" in weak.stderr and "Traceback" not in weak.stderr
    again = _admin_create(rt, cli_admin[0])
    assert again.returncode != 0 and "CONFLICT" in again.stderr
    assert "Traceback" not in again.stderr
    bad_email = _admin_create(rt, "mail-admin", email="not-an-email")
    assert bad_email.returncode != 0 and "Traceback" not in bad_email.stderr


async def test_admin_totp_secret_is_stored_sealed(rt, cli_admin):
    from api.models.member import Admin

    row = await Admin.get(user_id=cli_admin[0])
    assert cli_admin[1].encode() not in bytes(row.totp_secret_ct)
    assert PASSWORD not in row.password_hash and row.password_hash.startswith("$argon2id$")


async def test_failed_admin_codes_are_throttled(gql, cli_admin):
    codes = [error_code(await _login(gql, cli_admin[0], "999999")) for _ in range(7)]
    assert "RATE_LIMITED" in codes
