"""Registration, sign-in, token rotation and profile edits over HTTP."""

from tests.conftest import LOGIN, PASSWORD, error_code, register_member

ME = "{ me { id userId email fullName phone address dateOfBirth status } }"


async def test_register_then_me_returns_the_profile(gql, member):
    body = await gql(ME, token=member.token)
    assert body["data"]["me"] == {
        "id": member.id, "userId": "alice", "email": "alice@example.org",
        "fullName": "Alice Example", "phone": "+44 20 7946 0000",
        "address": "1 Clinic Road, Leeds", "dateOfBirth": "1990-04-01", "status": "ACTIVE",
    }


async def test_login_with_password(gql, member):
    body = await gql(LOGIN, {"u": "alice", "p": PASSWORD})
    assert body["data"]["login"]["role"] == "MEMBER"
    assert body["data"]["login"]["member"]["id"] == member.id


async def test_duplicate_registration_is_a_conflict(gql, member):
    body = await gql("""mutation { register(input: {userId: "alice", email: "x@example.org",
        fullName: "X", password: "another long passphrase 9"}) { role } }""")
    assert error_code(body) == "CONFLICT"


async def test_me_without_token_is_unauthenticated(gql):
    assert error_code(await gql(ME)) == "UNAUTHENTICATED"


async def test_bad_input_is_refused_and_nothing_is_stored(gql, member):
    for email in ("not-an-email", "a@b", "x" * 300 + "@example.org"):
        body = await gql("mutation($e: String) { updateProfile(input: {email: $e}) { email } }",
                         {"e": email}, token=member.token)
        assert error_code(body) == "BAD_USER_INPUT", body
    body = await gql(ME, token=member.token)
    assert body["data"]["me"]["email"] == "alice@example.org"


async def test_update_profile_changes_and_clears_fields(gql, member):
    body = await gql("""mutation { updateProfile(input: {fullName: "Alice B", phone: null}) {
        fullName phone } }""", token=member.token)
    assert body["data"]["updateProfile"] == {"fullName": "Alice B", "phone": None}


async def test_weak_password_is_refused(gql):
    body = await gql("""mutation { register(input: {userId: "carol", email: "c@example.org",
        fullName: "C", password: "short"}) { role } }""")
    assert error_code(body) == "BAD_USER_INPUT"


async def test_refresh_rotates_and_reuse_revokes_the_family(gql, member):
    q = "mutation($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken } }"
    first = (await gql(q, {"t": member.refresh_token}))["data"]["refresh"]
    assert first["refreshToken"] != member.refresh_token
    assert error_code(await gql(q, {"t": member.refresh_token})) == "UNAUTHENTICATED"
    # The family is revoked: the newer token stops working too.
    assert error_code(await gql(q, {"t": first["refreshToken"]})) == "UNAUTHENTICATED"


async def test_logout_revokes_the_refresh_token(gql, member):
    body = await gql("mutation($t: String!) { logout(refreshToken: $t) }",
                     {"t": member.refresh_token})
    assert body["data"]["logout"] is True
    body = await gql("mutation($t: String!) { refresh(refreshToken: $t) { accessToken } }",
                     {"t": member.refresh_token})
    assert error_code(body) == "UNAUTHENTICATED"


async def test_repeated_failures_are_rate_limited(gql):
    await register_member(gql, "dave")
    codes = [error_code(await gql(LOGIN, {"u": "dave", "p": "wrong password here"}))
             for _ in range(6)]
    assert codes[:5] == ["UNAUTHENTICATED"] * 5
    assert codes[5] == "RATE_LIMITED"
    body = await gql(LOGIN, {"u": "dave", "p": PASSWORD})
    assert error_code(body) == "RATE_LIMITED"
