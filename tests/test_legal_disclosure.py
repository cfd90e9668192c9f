"""Legal-process disclosure (policy 5.1): four eyes, released once, shown to the member unless
the order forbids it (audited, reviewed every 90 days); destroyed members are NOT_FOUND and
dormant members are read from the vault without being woken."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.members import sessions
from api.members.dormancy import make_dormant
from api.models.audit import AuditEntry
from api.models.enums import MemberStatus
from api.models.member import Admin, Member
from api.models.partner import OutboxEvent
from api.models.rights import Notification
from api.rights import legal_disclosure
from tests.conftest import PASSWORD, Account, create_admin, error_code

REQUEST = """
mutation($m: ID!, $basis: LegalBasis!, $fields: [PersonalField!]!, $notify: Boolean!) {
  requestLegalDisclosure(memberId: $m, authority: "Leeds Crown Court", reference: "T2026-0042",
    legalBasis: $basis, fields: $fields, justification: "Production order s.345 POCA 2002",
    notifyMember: $notify) {
    id memberId authority reference legalBasis fields justification notifyMember status
    requestedBy decidedBy requestedAt decidedAt
  }
}"""
DECIDE = """
mutation($id: ID!, $ok: Boolean!) {
  decideLegalDisclosure(id: $id, approve: $ok, note: "order checked") { status decidedBy decidedAt }
}"""
RELEASE = "mutation($id: ID!) { releaseLegalDisclosure(id: $id) }"
LIST = ("query($s: LegalDisclosureStatus) { legalDisclosures(status: $s) "
        "{ id status notifyMember requestedBy decidedBy } }")
MY_DISCLOSURES = "{ me { disclosures { partner fields purpose legalBasis at } } }"


@pytest.fixture
async def second_admin(rt) -> Account:
    await create_admin(rt, "second-admin")
    admin = await Admin.get(user_id="second-admin")
    token = (await sessions.start(rt, "ADMIN", str(admin.id))).access_token
    return Account(str(admin.id), "second-admin", admin.email, token, "")


async def _request(gql, admin, member_id: str, *, notify: bool = True,
                   basis: str = "LEGAL_OBLIGATION",
                   fields: tuple[str, ...] = ("FULL_NAME", "ADDRESS")) -> dict[str, Any]:
    body = await gql(REQUEST, {"m": member_id, "basis": basis, "fields": list(fields),
                               "notify": notify}, token=admin.token)
    assert "errors" not in body, body
    return body["data"]["requestLegalDisclosure"]


async def _actions(subject: str) -> list[str]:
    return [e.action for e in await AuditEntry.filter(subject=subject).order_by("seq")]


async def test_four_eyes_release_once_and_the_member_sees_it(gql, rt, member, admin,
                                                             second_admin):
    opened = await _request(gql, admin, member.id)
    assert {k: opened[k] for k in ("memberId", "authority", "reference", "legalBasis", "fields",
                                   "notifyMember", "status", "requestedBy", "decidedBy",
                                   "decidedAt")} == {
        "memberId": member.id, "authority": "Leeds Crown Court", "reference": "T2026-0042",
        "legalBasis": "LEGAL_OBLIGATION", "fields": ["FULL_NAME", "ADDRESS"],
        "notifyMember": True, "status": "REQUESTED", "requestedBy": "root-admin",
        "decidedBy": None, "decidedAt": None}
    did = opened["id"]

    # Nothing leaves before a decision, and the requester cannot decide their own request.
    assert error_code(await gql(RELEASE, {"id": did}, token=admin.token)) == "CONFLICT"
    own = await gql(DECIDE, {"id": did, "ok": True}, token=admin.token)
    assert error_code(own) == "FORBIDDEN"
    assert own["data"] is None

    approved = await gql(DECIDE, {"id": did, "ok": True}, token=second_admin.token)
    assert approved["data"]["decideLegalDisclosure"] == {
        "status": "APPROVED", "decidedBy": "second-admin", "decidedAt": "2026-01-01T00:00:00+00:00"}
    again = await gql(DECIDE, {"id": did, "ok": False}, token=second_admin.token)
    assert error_code(again) == "CONFLICT"  # decided once

    released = await gql(RELEASE, {"id": did}, token=admin.token)
    assert released["data"]["releaseLegalDisclosure"] == {
        "fullName": "Alice Example", "address": "1 Clinic Road, Leeds"}  # the approved fields only
    twice = await gql(RELEASE, {"id": did}, token=second_admin.token)
    assert error_code(twice) == "CONFLICT"
    assert twice["data"] is None

    mine = await gql(MY_DISCLOSURES, token=member.token)
    assert mine["data"]["me"]["disclosures"] == [{
        "partner": "Leeds Crown Court", "fields": ["FULL_NAME", "ADDRESS"],
        "purpose": "legal_process", "legalBasis": "LEGAL_OBLIGATION",
        "at": "2026-01-01T00:00:00+00:00"}]
    mail = await Notification.filter(member_id=member.id, kind="legal_disclosure.released")
    assert len(mail) == 1 and "Leeds Crown Court" in mail[0].body
    assert await _actions(did) == ["legal_disclosure.request", "legal_disclosure.approved",
                                   "legal_disclosure.release"]
    listed = await gql(LIST, {"s": "RELEASED"}, token=second_admin.token)
    assert listed["data"]["legalDisclosures"] == [{
        "id": did, "status": "RELEASED", "notifyMember": True, "requestedBy": "root-admin",
        "decidedBy": "second-admin"}]
    assert (await gql(LIST, {"s": "REQUESTED"}, token=admin.token))["data"][
        "legalDisclosures"] == []


async def test_only_legal_obligation_or_vital_interest(gql, member, admin):
    for basis in ("CONSENT", "CONTRACT"):
        body = await gql(REQUEST, {"m": member.id, "basis": basis, "fields": ["EMAIL"],
                                   "notify": True}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", body
    body = await gql(REQUEST, {"m": member.id, "basis": "VITAL_INTEREST", "fields": [],
                               "notify": True}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"  # the minimum fields must be named
    assert (await _request(gql, admin, member.id, basis="VITAL_INTEREST"))["legalBasis"] == (
        "VITAL_INTEREST")


async def test_member_not_told_is_hidden_audited_and_reviewed(gql, rt, clock, member, admin,
                                                             second_admin):
    opened = await _request(gql, admin, member.id, notify=False, fields=("EMAIL",))
    did = opened["id"]
    assert (await gql(DECIDE, {"id": did, "ok": True}, token=second_admin.token))["data"][
        "decideLegalDisclosure"]["status"] == "APPROVED"
    released = await gql(RELEASE, {"id": did}, token=second_admin.token)
    assert released["data"]["releaseLegalDisclosure"] == {"email": "alice@example.org"}

    assert (await gql(MY_DISCLOSURES, token=member.token))["data"]["me"]["disclosures"] == []
    export = await gql("mutation { exportMyData { data } }", token=member.token)
    assert export["data"]["exportMyData"]["data"]["disclosures"] == []
    assert await Notification.filter(member_id=member.id,
                                      kind="legal_disclosure.released").count() == 0
    assert await _actions(did) == ["legal_disclosure.request", "legal_disclosure.member_not_told",
                                   "legal_disclosure.approved", "legal_disclosure.release"]
    told = await AuditEntry.get(subject=did, action="legal_disclosure.member_not_told")
    assert told.detail == {"member": member.id, "reviewDueAt": "2026-04-01T00:00:00+00:00"}

    # Every 90 days the admins are asked to review it; the same day twice reminds once.
    clock.set(datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert await legal_disclosure.reviews(rt) == {"reminded": 0}
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    assert await legal_disclosure.reviews(rt) == {"reminded": 1}
    assert await legal_disclosure.reviews(rt) == {"reminded": 0}
    assert await Notification.filter(kind="legal_disclosure.review").count() == 2  # two admins
    clock.set(datetime(2026, 6, 30, tzinfo=UTC))
    assert await legal_disclosure.reviews(rt) == {"reminded": 1}
    assert await _actions(did) == [
        "legal_disclosure.request", "legal_disclosure.member_not_told",
        "legal_disclosure.approved", "legal_disclosure.release", "legal_disclosure.review_due",
        "legal_disclosure.review_due"]


async def test_rejected_is_never_released(gql, member, admin, second_admin):
    did = (await _request(gql, admin, member.id))["id"]
    body = await gql(DECIDE, {"id": did, "ok": False}, token=second_admin.token)
    assert body["data"]["decideLegalDisclosure"]["status"] == "REJECTED"
    assert error_code(await gql(RELEASE, {"id": did}, token=admin.token)) == "CONFLICT"
    assert (await gql(MY_DISCLOSURES, token=member.token))["data"]["me"]["disclosures"] == []


async def test_destroyed_member_is_not_found(gql, member, admin):
    gone = await gql(f'mutation {{ withdrawMembership(password: "{PASSWORD}") {{ destroyed }} }}',
                     token=member.token)
    assert "errors" not in gone, gone
    body = await gql(REQUEST, {"m": member.id, "basis": "LEGAL_OBLIGATION",
                               "fields": ["EMAIL"], "notify": True}, token=admin.token)
    assert error_code(body) == "NOT_FOUND"
    body = await gql(REQUEST, {"m": "3f2c1d4e-0000-4000-8000-000000000000",
                               "basis": "LEGAL_OBLIGATION", "fields": ["EMAIL"], "notify": True},
                     token=admin.token)
    assert error_code(body) == "NOT_FOUND"
    assert error_code(await gql(RELEASE, {"id": "not-an-id"}, token=admin.token)) == "NOT_FOUND"


async def test_dormant_member_is_read_from_the_vault_and_stays_dormant(gql, rt, member, admin,
                                                                      second_admin):
    assert await make_dormant(rt, member.id)
    did = (await _request(gql, admin, member.id,
                          fields=("FULL_NAME", "DATE_OF_BIRTH", "PHONE")))["id"]
    await gql(DECIDE, {"id": did, "ok": True}, token=second_admin.token)
    released = await gql(RELEASE, {"id": did}, token=admin.token)
    assert released["data"]["releaseLegalDisclosure"] == {
        "fullName": "Alice Example", "dateOfBirth": "1990-04-01", "phone": "+44 20 7946 0000"}
    assert (await Member.get(id=member.id)).status == MemberStatus.DORMANT


async def test_an_authority_is_not_a_partner_on_withdrawal(gql, member, admin, second_admin):
    did = (await _request(gql, admin, member.id))["id"]
    await gql(DECIDE, {"id": did, "ok": True}, token=second_admin.token)
    await gql(RELEASE, {"id": did}, token=admin.token)
    withdrawn = await gql("mutation($p: String!) { withdrawMembership(password: $p) "
                          "{ destroyed partnersNotified } }", {"p": PASSWORD}, token=member.token)
    assert withdrawn["data"]["withdrawMembership"] == {"destroyed": True, "partnersNotified": []}
    assert await OutboxEvent.filter(type="member.erasure").count() == 0
