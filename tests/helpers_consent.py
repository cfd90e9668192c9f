"""Small helpers shared by the consent, policy, cookie, receipt and audit tests."""

from __future__ import annotations

from tests.conftest import LOGIN, PASSWORD


async def fresh_token(gql, user_id: str) -> str:
    """Sign in again (access tokens last minutes; tests move the clock by days)."""
    body = await gql(LOGIN, {"u": user_id, "p": PASSWORD})
    assert "errors" not in body, body
    return body["data"]["login"]["accessToken"]
