"""Admin reads of members: keyset pages by status, audited single reads, dormant accounts."""

from datetime import UTC, datetime

from api.members.dormancy import dormancy
from api.members.sessions import access_token_for
from api.models.audit import AuditEntry
from api.security.tokens import Principal
from tests.conftest import error_code, register_member

MEMBERS = """query($after: String, $status: MemberStatus) {
  members(first: 2, after: $after, status: $status) {
    edges { cursor node { id userId status } } pageInfo { hasNextPage endCursor } } }"""


async def test_members_pages_by_keyset_without_repeats(gql, admin):
    ids = {(await register_member(gql, f"user{n}")).id for n in range(5)}
    seen, after = [], None
    while True:
        page = (await gql(MEMBERS, {"after": after}, token=admin.token))["data"]["members"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)


async def test_a_bad_cursor_is_bad_input(gql, admin):
    body = await gql(MEMBERS, {"after": "not a cursor"}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"


async def test_reading_one_member_is_audited(gql, admin, member):
    body = await gql("query($id: ID!) { member(id: $id) { userId } }", {"id": member.id},
                     token=admin.token)
    assert body["data"]["member"] == {"userId": "alice"}
    assert await AuditEntry.filter(action="admin.read_member", subject=member.id).count() == 1


async def test_dormant_members_are_listed_with_their_data_sealed_away(gql, rt, clock, member):
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))  # notice: 11 months after registering
    await dormancy(rt)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))  # dormant: 12 months
    assert (await dormancy(rt))["dormant"] == 1
    token = access_token_for(rt, Principal("ADMIN", "00000000-0000-0000-0000-000000000001"))
    page = (await gql(MEMBERS, {"status": "DORMANT"}, token=token))["data"]["members"]
    assert page["edges"] == [{"cursor": page["edges"][0]["cursor"],
                              "node": {"id": member.id, "userId": "", "status": "DORMANT"}}]
    body = await gql("query($id: ID!) { member(id: $id) { status email } }", {"id": member.id},
                     token=token)
    assert body["data"]["member"] == {"status": "DORMANT", "email": ""}
