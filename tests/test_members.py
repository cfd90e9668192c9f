"""Registration, sign-in, token rotation and profile edits over HTTP."""

import pytest

from api.core.errors import Conflict
from api.members import records
from api.models.audit import AuditEntry
from api.platform import audit
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


async def test_a_profile_edit_and_its_audit_entry_commit_together(gql, rt, member,
                                                                   other_member):
    """The new columns and the entry recording them are one transaction (on SQLite one call
    on the connection's thread): both are written and chained, or neither."""
    body = await gql("""mutation { updateProfile(input: {fullName: "Alice B", phone: null}) {
        fullName phone } }""", token=member.token)
    assert "errors" not in body, body
    last = await AuditEntry.all().order_by("-seq").first()
    assert (last.action, last.subject, last.detail) == (
        "member.update_profile", member.id, {"fields": ["FULL_NAME", "PHONE"]})
    assert (await audit.verify_chain())[1] is None
    entries = await AuditEntry.all().count()
    with pytest.raises(Conflict):  # alice's address: the unique index refuses it
        await records.update_profile(rt, other_member.id, {"full_name": "Bob B",
                                                           "email": "alice@example.org"})
    assert await AuditEntry.all().count() == entries
    assert (await records.get_view(rt, other_member.id)).full_name != "Bob B"


_REFUSE_PROFILE_ENTRIES = {
    "sqlite": ("CREATE TRIGGER refuse_profile_entries BEFORE INSERT ON audit_entries "
               "WHEN NEW.action = 'member.update_profile' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
               "DROP TRIGGER refuse_profile_entries"),
    "postgres": ("CREATE FUNCTION refuse_profile_entries() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; "
                 "CREATE TRIGGER refuse_profile_entries BEFORE INSERT ON audit_entries "
                 "FOR EACH ROW WHEN (NEW.action = 'member.update_profile') "
                 "EXECUTE FUNCTION refuse_profile_entries()",
                 "DROP TRIGGER refuse_profile_entries ON audit_entries; "
                 "DROP FUNCTION refuse_profile_entries()"),
}


async def test_a_profile_edit_whose_audit_entry_fails_changes_nothing(rt, member):
    """The database refuses the entry (a trigger): the edit that came with it is undone."""
    from tortoise import connections

    db = connections.get("default")
    create, drop = _REFUSE_PROFILE_ENTRIES[db.capabilities.dialect]
    await db.execute_script(create)
    try:
        with pytest.raises(Exception):  # noqa: B017 - whichever error the driver gives
            await records.update_profile(rt, member.id, {"full_name": "Alice C"})
    finally:
        await db.execute_script(drop)
    assert (await records.get_view(rt, member.id)).full_name == "Alice Example"


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
