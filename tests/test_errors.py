"""Values the database refuses (NUL bytes, on PostgreSQL) are bad input, never INTERNAL."""

from tests.conftest import error_code


async def test_a_nul_byte_reaching_the_database_is_bad_input(gql, member):
    body = await gql("mutation($p: String!) { withdrawConsent(purpose: $p) { state } }",
                     {"p": "market\u0000ing"}, token=member.token)
    assert error_code(body) in ("BAD_USER_INPUT", "NOT_FOUND"), body


async def test_an_unexpected_error_is_masked_with_a_request_id(gql, member):
    body = await gql("{ member(id: \"not-a-uuid\") { id } }", token=member.token)
    assert error_code(body) == "FORBIDDEN"
