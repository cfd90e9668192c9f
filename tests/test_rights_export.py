"""Access and portability: one versioned JSON document with everything held about the member."""

from __future__ import annotations

from api.members.notifications import notify
from api.models.enums import DataRequestKind, DataRequestStatus
from api.models.rights import DataRequest
from tests.conftest import error_code
from tests.helpers_rights import add_purchase, disclose, make_partner

EXPORT = "mutation { exportMyData { format generatedAt data } }"
CONSENT = """mutation($p: String!, $v: String!) {
  giveConsent(purpose: $p, policyVersion: $v) { receipt } }"""
COOKIES = """mutation { setCookiePreferences(deviceId: "device-1", analytics: true,
  personalization: false, marketing: false) { deviceId } }"""


async def test_export_contains_everything_listed(gql, rt, clock, member, other_member):
    given = await gql(CONSENT, {"p": "marketing", "v": "1.0"}, token=member.token)
    assert "errors" not in given, given
    receipt = given["data"]["giveConsent"]["receipt"]
    assert "errors" not in await gql(COOKIES, token=member.token)
    partner = await make_partner(rt, "Parcel Co")
    await disclose(rt, partner, member.id, ["FULL_NAME", "ADDRESS"])
    await add_purchase(rt, member.id, "INV-2026-0001")
    await notify(rt, None, member_id=member.id, kind="policy.announced", subject="New policy",
                 body="A new policy version was announced.")
    await add_purchase(rt, other_member.id, "INV-OTHER")

    body = await gql(EXPORT, token=member.token)
    assert "errors" not in body, body
    out = body["data"]["exportMyData"]
    assert out["format"] == "consentry.export/v1"
    data = out["data"]
    assert data["format"] == "consentry.export/v1"
    assert data["member"]["email"] == "alice@example.org"
    assert data["member"]["fullName"] == "Alice Example"
    assert data["member"]["address"] == "1 Clinic Road, Leeds"
    assert data["member"]["dateOfBirth"] == "1990-04-01"
    assert [c["receipt"] for c in data["consents"]] == [receipt]
    assert data["consents"][0]["purpose"] == "marketing"
    assert [c["deviceId"] for c in data["cookieChoices"]] == ["device-1"]
    assert data["cookieChoices"][0]["necessary"] is True
    assert [p["reference"] for p in data["purchases"]] == ["INV-2026-0001"]
    assert data["disclosures"][0]["partner"] == "Parcel Co"
    assert data["disclosures"][0]["fields"] == ["ADDRESS", "FULL_NAME"]
    assert sorted(n["kind"] for n in data["notifications"]) == ["account.verify_email",
                                                                "policy.announced"]
    # The export itself is a PORTABILITY request, completed at once, due 30 days later.
    [req] = data["dataRequests"]
    assert req["kind"] == "PORTABILITY" and req["status"] == "COMPLETED"
    row = await DataRequest.get(member_id=member.id)
    assert row.kind == DataRequestKind.PORTABILITY and row.status == DataRequestStatus.COMPLETED
    assert (row.due_at - row.received_at).days == 30


async def test_export_needs_a_member_token(gql, admin):
    assert error_code(await gql(EXPORT)) == "UNAUTHENTICATED"
    assert error_code(await gql(EXPORT, token=admin.token)) == "FORBIDDEN"


async def test_member_sees_own_requests_only(gql, member, other_member):
    await gql(EXPORT, token=member.token)
    mine = await gql("{ me { dataRequests { kind status dueAt receivedAt } } }",
                     token=member.token)
    assert [r["kind"] for r in mine["data"]["me"]["dataRequests"]] == ["PORTABILITY"]
    theirs = await gql("{ me { dataRequests { kind } } }", token=other_member.token)
    assert theirs["data"]["me"]["dataRequests"] == []
