"""The audit trail: paged over HTTP for admins; verify catches edited, deleted, swapped entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.models.audit import AuditEntry
from api.platform import audit
from api.platform.audit import verify_chain
from tests.conftest import PASSWORD, error_code
from tests.helpers_consent import cli_store, raw_sql, run_cli

TRAIL = """query($first: Int, $after: String) {
  auditTrail(first: $first, after: $after) {
    edges { cursor node { seq at actor action subject hash } }
    pageInfo { hasNextPage endCursor } } }"""


async def _sql(sql: str, *values: object) -> None:
    await raw_sql(None, sql, *values)


async def _chain(rt, n: int) -> None:
    for i in range(n):
        await audit.record(rt, "test", "test.write", f"thing:{i}", {"i": i})


async def test_intact_chain_verifies(rt):
    await _chain(rt, 5)
    assert await verify_chain() == (5, None)
    assert await verify_chain(batch=2) == (5, None)


async def test_verify_catches_an_edited_entry(rt):
    await _chain(rt, 5)
    await _sql("UPDATE audit_entries SET actor = $1 WHERE seq = $2", "admin:someone-else", 3)
    checked, broken = await verify_chain()
    assert (checked, broken.seq) == (2, 3)
    assert "content" in broken.reason


# Every column of audit_entries, each with a value it does not hold: the hash covers
# seq, at, actor, action, subject and detail; prev_hash and hash are the links themselves,
# pos the place in the chain (a gap there is a missing entry).
HASHED_COLUMNS = [
    ("seq", 30),
    ("pos", 30),
    ("at", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)),
    ("actor", "admin:someone-else"),
    ("action", "test.other"),
    ("subject", "thing:99"),
    ("detail", '{"i": 99}'),
    ("prev_hash", "f" * 64),
    ("hash", "e" * 64),
]


@pytest.mark.parametrize(("column", "value"), HASHED_COLUMNS, ids=[c for c, _ in HASHED_COLUMNS])
async def test_verify_catches_an_edit_of_every_column(rt, column, value):
    await _chain(rt, 5)
    assert await verify_chain() == (5, None)
    await _sql(f"UPDATE audit_entries SET {column} = $1 WHERE seq = $2", value, 3)
    checked, broken = await verify_chain()
    assert (checked, broken.seq) == (2, 3)


def test_every_column_of_an_entry_is_in_the_edit_test() -> None:
    assert set(AuditEntry._meta.db_fields) == {c for c, _ in HASHED_COLUMNS}


async def test_verify_catches_an_entry_rewritten_with_its_own_hash(rt):
    await _chain(rt, 5)
    row = await AuditEntry.get(seq=3)
    forged = audit.entry_hash(row.prev_hash, 3, row.at, "admin:someone-else", row.action,
                              row.subject, row.detail)
    await _sql("UPDATE audit_entries SET actor = $1, hash = $2 WHERE seq = $3",
               "admin:someone-else", forged, 3)
    broken = (await verify_chain())[1]
    assert broken.seq == 4 and "previous-hash" in broken.reason


async def test_verify_catches_a_deleted_entry(rt):
    await _chain(rt, 5)
    await _sql("DELETE FROM audit_entries WHERE seq = $1", 3)
    checked, broken = await verify_chain()
    assert (checked, broken.seq) == (2, 3)
    assert "missing" in broken.reason


async def test_verify_catches_swapped_entries(rt):
    await _chain(rt, 5)
    await _sql("UPDATE audit_entries SET seq = $1 WHERE seq = $2", -1, 2)
    await _sql("UPDATE audit_entries SET seq = $1 WHERE seq = $2", 2, 4)
    await _sql("UPDATE audit_entries SET seq = $1 WHERE seq = $2", 4, -1)
    checked, broken = await verify_chain()
    assert (checked, broken.seq) == (1, 2)


async def test_cli_audit_verify_exits_1_naming_the_bad_entry(rt, tmp_path):
    """End to end with the real CLI: entries written by ``consentry admin create``."""
    store = cli_store(rt, tmp_path)
    assert (await run_cli(store, "migrate"))[0] == 0
    for user in ("ops-one", "ops-two", "ops-three"):
        code, out, err = await run_cli(store, "admin", "create", "--user-id", user, "--email",
                                       f"{user}@clinic.example", stdin=PASSWORD + "\n")
        assert code == 0 and out.startswith("otpauth://"), err
    code, out, _ = await run_cli(store, "audit", "verify")
    assert code == 0 and "3 entries" in out
    await raw_sql(store, "UPDATE audit_entries SET action = $1 WHERE seq = $2", "admin.nothing", 2)
    code, out, err = await run_cli(store, "audit", "verify")
    assert code == 1
    assert "at entry 2:" in err


async def test_audit_trail_pages_by_seq(gql, admin, rt):
    await _chain(rt, 7)
    total = await AuditEntry.all().count()
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        body = await gql(TRAIL, {"first": 3, "after": after}, token=admin.token)
        conn = body["data"]["auditTrail"]
        seen += [e["node"]["seq"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        assert after == conn["edges"][-1]["cursor"]
    assert seen == list(range(1, total + 1))
    assert pages == -(-total // 3)
    first = (await gql(TRAIL, {"first": 1}, token=admin.token))["data"]["auditTrail"]
    row = await AuditEntry.get(seq=1)
    assert first["edges"][0]["node"]["hash"] == row.hash


async def test_audit_trail_default_and_maximum_page(gql, admin, rt):
    await _chain(rt, 120)
    body = await gql("{ auditTrail { edges { node { seq } } pageInfo { hasNextPage } } }",
                     token=admin.token)
    assert len(body["data"]["auditTrail"]["edges"]) == 100
    assert body["data"]["auditTrail"]["pageInfo"]["hasNextPage"] is True
    for first in (0, -1, 101):
        assert error_code(await gql(TRAIL, {"first": first}, token=admin.token)) \
            == "BAD_USER_INPUT"


async def test_audit_trail_rejects_foreign_cursors(gql, admin):
    for after in ("garbage", "bm90LWEtY3Vyc29y", "YXVkaXQ6LTE=", "YXVkaXQ6" + "OTk5" * 10, "é"):
        body = await gql(TRAIL, {"first": 5, "after": after}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", (after, body)


async def test_audit_trail_needs_an_admin(gql, member):
    assert error_code(await gql(TRAIL)) == "UNAUTHENTICATED"
    assert error_code(await gql(TRAIL, token=member.token)) == "FORBIDDEN"


async def test_entries_hold_no_personal_values(gql, member, admin):
    await gql("query($id: ID!) { member(id: $id) { email } }", {"id": member.id},
              token=admin.token)
    await gql('mutation { giveConsent(purpose: "health_data", policyVersion: "1.0") { state } }',
              token=member.token)
    text = " ".join(f"{e.actor} {e.action} {e.subject} {e.detail}"
                    for e in await AuditEntry.all())
    for value in ("alice@example.org", "Alice Example", "7946", "Clinic Road", "1990-04-01"):
        assert value not in text
