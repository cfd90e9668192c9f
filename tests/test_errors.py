"""Error mapping: refused values are bad input, wrong roles are FORBIDDEN, never INTERNAL."""

import pytest

from tests.conftest import error_code

pytestmark = pytest.mark.both_graphql_paths


async def test_a_nul_byte_reaching_the_database_is_bad_input(gql, member):
    body = await gql("mutation($p: String!) { withdrawConsent(purpose: $p) { state } }",
                     {"p": "market\u0000ing"}, token=member.token)
    assert error_code(body) in ("BAD_USER_INPUT", "NOT_FOUND"), body


async def test_a_member_token_cannot_read_members_by_id(gql, member):
    body = await gql("{ member(id: \"not-a-uuid\") { id } }", token=member.token)
    assert error_code(body) == "FORBIDDEN"


async def test_a_control_character_in_a_sign_in_id_is_bad_input(gql):
    body = await gql('mutation { login(userId: "ali\\u0000ce", password: "x") { role } }')
    assert error_code(body) == "BAD_USER_INPUT", body


async def test_dead_letter_pages_are_bounded(gql, admin):
    body = await gql("{ deadLetters(first: 1000) { id } }", token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"
    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(101)]
    body = await gql("mutation($ids: [ID!]!) { retryDeadLetters(ids: $ids) }", {"ids": ids},
                     token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"
