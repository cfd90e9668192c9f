"""Security round 2, accounts: the attacks an outside tester ran, replayed against real servers.

Each test starts ``consentry serve`` (tests/helpers_serve.py) on its own fresh store: a SQLite
file, or a fresh pair of PostgreSQL databases when CONSENTRY_TEST_DATABASE_URL is set. What the
servers wrote is read back from that store directly (the audit trail's details and the cookie
choices are not all exposed over the API).

- lockout under concurrency: two processes, 20 parallel wrong passwords for one account;
- anonymous writes: aliased mutations and floods of cookie choices;
- admin sessions: refresh 13 hours after the password+code sign-in, under libfaketime;
- bulk reads: every page of ``members`` leaves an audit entry naming its members.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.conftest import PASSWORD
from tests.helpers_serve import CONSENTRY, fresh_store, serve

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")
FAKETIME_LIB = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))

LOGIN = ("mutation($u: String!, $p: String!, $o: String) { login(userId: $u, password: $p, "
         "otp: $o) { accessToken refreshToken role } }")
REFRESH = "mutation($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken role } }"
REGISTER = ("mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken "
            "member { id } } }")
COOKIES = ("mutation($d: String!) { setCookiePreferences(deviceId: $d, analytics: true, "
           "personalization: false, marketing: false) { deviceId } }")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for servers sharing one fresh store (and one data directory for keys)."""
    with fresh_store(tmp_path, "attack") as env:
        yield env


def _select(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    """Rows from the servers' main store (the same SQL on both databases, no parameters)."""
    if "CONSENTRY_DATABASE_URL" not in env:
        conn = sqlite3.connect(Path(env["CONSENTRY_DATA_DIR"]) / "consentry.sqlite3")
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg

        url = env["CONSENTRY_DATABASE_URL"].replace("postgres://", "postgresql://", 1)
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _call(url: str, query: str, variables: dict[str, Any] | None = None,
          token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def _data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    return body["data"]


def _register(url: str, user_id: str, **extra: str) -> dict[str, Any]:
    fields = {"userId": user_id, "email": f"{user_id}@example.org",
              "fullName": f"{user_id.title()} Example", "password": PASSWORD, **extra}
    return _data(_call(url, REGISTER, {"i": fields}))["register"]


def _create_admin(env: dict[str, str], user_id: str) -> str:
    done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", user_id, "--email",
                           f"{user_id}@clinic.example"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret


def _admin_login(url: str, user_id: str, secret: str, at: datetime) -> dict[str, Any]:
    return _data(_call(url, LOGIN, {"u": user_id, "p": PASSWORD,
                                    "o": pyotp.TOTP(secret).at(at)}))["login"]


# -- 2. the sign-in lockout holds under concurrency, across processes --------------------------

def test_parallel_wrong_passwords_over_two_processes_are_checked_at_most_five_times(
        stack: dict[str, str], tmp_path: Path) -> None:
    # The per-account request limit (20/minute) would hide the lockout: lift it for this test.
    env = {**stack, "CONSENTRY_RATE_LIMIT_LOGIN": "1000/minute",
           "CONSENTRY_RATE_LIMIT_LOGIN_IP": "1000/minute"}
    with serve(env, tmp_path / "a.log") as (first, _), serve(env, tmp_path / "b.log") as (second, _):
        _register(first, "victim")

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=120) as client:
                return await asyncio.gather(*(
                    client.post(f"{(first, second)[i % 2]}/graphql", json={
                        "query": LOGIN, "variables": {"u": "victim", "p": f"wrong guess {i}"}})
                    for i in range(20)))

        answers = [r.json() for r in asyncio.run(burst())]
        codes = sorted(_codes(body)[0] for body in answers)
        assert codes == ["RATE_LIMITED"] * 15 + ["UNAUTHENTICATED"] * 5
        for url in (first, second):
            assert _codes(_call(url, LOGIN, {"u": "victim", "p": PASSWORD})) == ["RATE_LIMITED"]


# -- 6. anonymous writes are limited ---------------------------------------------------------------

ALIASED = {
    "register": """mutation { a: register(input: {userId: "alias-a", email: "a@example.org",
        fullName: "A", password: "correct horse battery staple 42"}) { accessToken }
        b: register(input: {userId: "alias-b", email: "b@example.org", fullName: "B",
        password: "correct horse battery staple 42"}) { accessToken } }""",
    "login": """mutation { a: login(userId: "nobody", password: "guess one") { accessToken }
        b: login(userId: "nobody", password: "guess two") { accessToken } }""",
    "refresh": """mutation { a: refresh(refreshToken: "x") { accessToken }
        b: refresh(refreshToken: "y") { accessToken } }""",
    "logout": """mutation { a: logout(refreshToken: "x") b: logout(refreshToken: "y") }""",
    "setCookiePreferences": """mutation { ...Twice }
        fragment Twice on Mutation {
        a: setCookiePreferences(deviceId: "d1", analytics: true, personalization: true,
                                marketing: true) { deviceId }
        b: setCookiePreferences(deviceId: "d2", analytics: true, personalization: true,
                                marketing: true) { deviceId } }""",
}


def test_anonymous_mutations_cannot_be_repeated_in_one_request(stack: dict[str, str],
                                                                 tmp_path: Path) -> None:
    with serve(stack, tmp_path / "serve.log") as (url, _):
        for name, document in ALIASED.items():
            body = _call(url, document)
            # Non-null fields: the first refusal ends the request (data null), none ran.
            assert body.get("data") is None, (name, body)
            assert set(_codes(body)) == {"BAD_USER_INPUT"}, (name, body)
        # Fifteen aliases, the original attack: nothing written.
        flood = "mutation { " + " ".join(
            f'c{i}: setCookiePreferences(deviceId: "flood", analytics: true, '
            f"personalization: true, marketing: true) {{ deviceId }}" for i in range(15)) + " }"
        assert set(_codes(_call(url, flood))) == {"BAD_USER_INPUT"}
        assert _select(stack, "SELECT count(*) FROM cookie_choices") == [(0,)]
        assert _select(stack, "SELECT count(*) FROM audit_entries WHERE action = 'cookies.set'"
                       ) == [(0,)]
        # A signed-in member may still combine mutations of one kind.
        token = _register(url, "combiner")["accessToken"]
        body = _call(url, 'mutation { a: setCookiePreferences(deviceId: "m1", analytics: true, '
                     'personalization: true, marketing: true) { deviceId } b: setCookiePreferences'
                     '(deviceId: "m2", analytics: false, personalization: false, marketing: false)'
                     ' { deviceId } }', token=token)
        assert _data(body) == {"a": {"deviceId": "m1"}, "b": {"deviceId": "m2"}}


def test_anonymous_cookie_choices_are_limited_per_device_and_per_address(
        stack: dict[str, str], tmp_path: Path) -> None:
    """The defaults: 30 an hour per device id, 120 an hour per address for anonymous writes."""
    with serve(stack, tmp_path / "serve.log") as (url, _):
        same_device = [_codes(_call(url, COOKIES, {"d": "device-a"})) for _ in range(31)]
        assert same_device == [[]] * 30 + [["RATE_LIMITED"]]
        # 31 counted for this address so far; 89 more devices reach its 120.
        others = [_codes(_call(url, COOKIES, {"d": f"device-{i}"})) for i in range(92)]
        assert others == [[]] * 89 + [["RATE_LIMITED"]] * 3
        assert _select(stack, "SELECT count(*) FROM cookie_choices") == [(119,)]


def test_anonymous_session_mutations_are_limited_per_address(stack: dict[str, str],
                                                             tmp_path: Path) -> None:
    env = {**stack, "CONSENTRY_RATE_LIMIT_SESSION_IP": "3/hour"}
    with serve(env, tmp_path / "serve.log") as (url, _):
        codes = [_codes(_call(url, REFRESH, {"t": f"made-up-{i}"})) for i in range(3)]
        assert codes == [["UNAUTHENTICATED"]] * 3
        assert _codes(_call(url, REFRESH, {"t": "made-up-4"})) == ["RATE_LIMITED"]
        body = _call(url, "mutation($t: String!) { logout(refreshToken: $t) }", {"t": "x"})
        assert _codes(body) == ["RATE_LIMITED"]


# -- 8. admin sessions end 12 hours after the sign-in with password and code -----------------------

@pytest.mark.skipif(not shutil.which("faketime") or not FAKETIME_LIB,
                    reason="needs faketime (.ci/run installs it)")
def test_admin_refresh_is_refused_13_hours_after_sign_in(stack: dict[str, str],
                                                         tmp_path: Path) -> None:
    """The servers run under libfaketime (what the ``faketime`` wrapper does: LD_PRELOAD and
    FAKETIME), restarted with the clock moved on over the same store."""
    def later(hours: int) -> dict[str, str]:
        return {**stack, "LD_PRELOAD": FAKETIME_LIB[0], "FAKETIME": f"+{hours}h"}

    with serve(stack, tmp_path / "now.log") as (url, _):
        member = _register(url, "longlived")
        secret = _create_admin(stack, "night-admin")
        admin = _admin_login(url, "night-admin", secret, datetime.now(UTC))
        assert admin["role"] == "ADMIN"
    with serve(later(11), tmp_path / "plus11.log") as (url, _):
        renewed = _data(_call(url, REFRESH, {"t": admin["refreshToken"]}))["refresh"]
        assert renewed["role"] == "ADMIN"
    with serve(later(13), tmp_path / "plus13.log") as (url, _):
        assert _codes(_call(url, REFRESH, {"t": renewed["refreshToken"]})) == ["UNAUTHENTICATED"]
        # Members keep their sliding 30-day sessions.
        assert _data(_call(url, REFRESH, {"t": member["refreshToken"]}))["refresh"]["role"] \
            == "MEMBER"
        # Password and code again: a new admin session.
        again = _admin_login(url, "night-admin", secret, datetime.now(UTC) + timedelta(hours=13))
        assert again["role"] == "ADMIN"


# -- 9. bulk reads of personal data are audited ----------------------------------------------------

MEMBERS = """query($after: String) { members(first: 2, after: $after) {
  edges { node { id email phone address fullName } } pageInfo { hasNextPage endCursor } } }"""


def test_every_page_of_members_is_audited_by_member_id(stack: dict[str, str],
                                                       tmp_path: Path) -> None:
    with serve(stack, tmp_path / "serve.log") as (url, _):
        for name in ("ann", "ben", "cat"):
            _register(url, name, phone="+44 20 7946 0111", address=f"{name} House, 1 Road")
        secret = _create_admin(stack, "reader-admin")
        token = _admin_login(url, "reader-admin", secret, datetime.now(UTC))["accessToken"]
        first = _data(_call(url, MEMBERS, token=token))["members"]
        second = _data(_call(url, MEMBERS, {"after": first["pageInfo"]["endCursor"]},
                             token=token))["members"]
        pages = [[e["node"]["id"] for e in page["edges"]] for page in (first, second)]
        assert [len(p) for p in pages] == [2, 1]
        assert "ann@example.org" in {e["node"]["email"] for e in first["edges"] + second["edges"]}

    rows = _select(stack, "SELECT actor, detail FROM audit_entries "
                          "WHERE action = 'admin.list_members' ORDER BY seq")
    assert [json.loads(detail)["members"] for _, detail in rows] == pages
    assert all(actor.startswith("admin:") for actor, _ in rows)
    text = " ".join(detail for _, detail in rows)
    for value in ("example.org", "7946", "House", "Example"):
        assert value not in text
