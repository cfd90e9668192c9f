"""Correction and restriction (Art. 7, invariant 6): a reported inaccuracy stops every
disclosure until the fields are corrected; then exactly the partners that received a corrected
field get a ``member.correction`` event with the corrected value."""

from __future__ import annotations

import json
import uuid

from api.members.records import data_key
from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.partner import OutboxEvent
from api.models.rights import DataRequest, Notification
from api.platform.jobs import run_all
from api.service.composition import JOBS
from api.sharing import purchases
from api.sharing.outbox import payload_label
from partners.recording import RecordingAdapter
from tests import helpers_rights
from tests.conftest import error_code
from tests.helpers_accounts import confirm_email
from tests.helpers_consent import fresh_token
from tests.helpers_rights import SHARED, announce, partner_token

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures

REPORT = """mutation($f: [PersonalField!]!, $n: String) {
  reportInaccuracy(fields: $f, note: $n) { id kind status fields receivedAt dueAt resolvedAt } }"""
UPDATE = """mutation($name: String, $email: String) {
  updateProfile(input: {fullName: $name, email: $email}) { fullName email status } }"""
RESOLVE = """mutation($id: ID!, $s: DataRequestStatus!, $n: String) {
  resolveDataRequest(id: $id, status: $s, note: $n) { id status resolvedAt } }"""


async def _shared(gql, token: str) -> list[dict]:
    body = await gql(SHARED, token=token)
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["sharedMembers"]["edges"]]


async def _deliver(rt) -> None:
    await run_all(rt, JOBS, only=["deliver_outbox"])


async def test_report_opens_a_correction_due_in_30_days_and_restricts(gql, member):
    body = await gql(REPORT, {"f": ["FULL_NAME"], "n": "my name is misspelt"},
                     token=member.token)
    req = body["data"]["reportInaccuracy"]
    assert req["kind"] == "CORRECTION" and req["status"] == "OPEN"
    assert req["fields"] == ["FULL_NAME"]
    row = await DataRequest.get(id=req["id"])
    assert (row.due_at - row.received_at).days == 30
    assert b"misspelt" not in bytes(row.note_ct)
    me = await gql("{ me { status dataRequests { id status } } }", token=member.token)
    assert me["data"]["me"]["status"] == "RESTRICTED"
    assert me["data"]["me"]["dataRequests"] == [{"id": req["id"], "status": "OPEN"}]


async def test_report_refuses_bad_input(gql, member):
    assert error_code(await gql(REPORT, {"f": []}, token=member.token)) == "BAD_USER_INPUT"
    assert error_code(await gql(REPORT, {"f": ["NOPE"]}, token=member.token)) == "BAD_USER_INPUT"
    body = await gql(REPORT, {"f": ["EMAIL"], "n": "x" * 5000}, token=member.token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert await DataRequest.all().count() == 0


async def test_restriction_blocks_pull_and_push_until_corrected(gql, rt, clock, member, mail_rt,
                                                                smtp):
    tag = uuid.uuid4().hex
    a = await announce(rt, f"Parcel {tag}", ["FULL_NAME", "ADDRESS"], f"a-{tag}")
    await announce(rt, f"Mailer {tag}", ["EMAIL"], f"b-{tag}")
    clock.advance(days=31)
    await purchases.record_purchase(rt, "admin:test", member.id, amount="10.00",
                                    currency="EUR", reference="INV-1")
    await _deliver(rt)  # A receives FULL_NAME + ADDRESS, B receives EMAIL
    assert [e.type for e in RecordingAdapter.events(f"a-{tag}")] == ["member.shared"]
    assert [e.type for e in RecordingAdapter.events(f"b-{tag}")] == ["member.shared"]
    # C comes into force later and never receives anything of this member.
    c = await announce(rt, f"Courier {tag}", ["FULL_NAME"], f"c-{tag}")
    clock.advance(days=31)
    token_a = await partner_token(rt, a)
    assert [n["fullName"] for n in await _shared(gql, token_a)] == ["Alice Example"]

    member_token = await fresh_token(gql, "alice")
    # An address change queued for A just before the report...
    body = await gql("""mutation { updateProfile(input: {address: "2 New Street, Leeds"}) {
        status } }""", token=member_token)
    assert await OutboxEvent.filter(type="member.updated", partner_id=a).count() == 1
    body = await gql(REPORT, {"f": ["FULL_NAME"]}, token=member_token)
    request_id = body["data"]["reportInaccuracy"]["id"]
    # ...is not delivered while restricted; pull returns nothing either.
    await _deliver(rt)  # A, which received the name, is told to suspend its use
    assert [e.type for e in RecordingAdapter.events(f"a-{tag}")] == ["member.shared",
                                                                     "member.restricted"]
    assert await _shared(gql, token_a) == []
    # Push: editing another shared field sends nothing while restricted.
    before = await OutboxEvent.all().count()
    body = await gql(UPDATE, {"email": "alice.new@example.org"}, token=member_token)
    assert body["data"]["updateProfile"]["status"] == "RESTRICTED"
    await confirm_email(gql, mail_rt, smtp, "alice.new@example.org")  # the change takes effect
    assert await OutboxEvent.all().count() == before
    assert (await DataRequest.get(id=request_id)).status == "OPEN"

    body = await gql(UPDATE, {"name": "Alice Exampel-Smith"}, token=member_token)
    assert body["data"]["updateProfile"]["status"] == "ACTIVE"
    assert (await DataRequest.get(id=request_id)).status == "COMPLETED"
    corrections = await OutboxEvent.filter(type="member.correction")
    assert [str(e.partner_id) for e in corrections] == [a]  # not B (no name), not C (never got it)
    key = await data_key(rt, member.id)
    payload = json.loads(key.decrypt(payload_label(str(corrections[0].id)),
                                     bytes(corrections[0].payload_ct)))
    assert payload["fullName"] == "Alice Exampel-Smith" and set(payload) == {"ref", "fullName"}
    await _deliver(rt)
    [event] = [e for e in RecordingAdapter.events(f"a-{tag}") if e.type == "member.correction"]
    assert event.to_dict()["member"]["fullName"] == "Alice Exampel-Smith"
    assert not [e for e in RecordingAdapter.events(f"c-{tag}") if e.type == "member.correction"]
    assert await Notification.filter(member_id=member.id, kind="correction.completed").count() == 1
    # The email edited while restricted reaches B now that the restriction is lifted.
    await _deliver(rt)
    [update] = [e.to_dict() for e in RecordingAdapter.events(f"b-{tag}")
                if e.type == "member.updated"]
    assert update["member"]["email"] == "alice.new@example.org"
    # Pull works again, with the corrected value.
    assert [n["fullName"] for n in await _shared(gql, token_a)] == ["Alice Exampel-Smith"]
    del c


async def test_correction_over_two_edits_completes_when_every_field_changed(gql, member, mail_rt,
                                                                            smtp):
    body = await gql(REPORT, {"f": ["FULL_NAME", "EMAIL"]}, token=member.token)
    request_id = body["data"]["reportInaccuracy"]["id"]
    await gql(UPDATE, {"name": "Alice Two"}, token=member.token)
    assert (await DataRequest.get(id=request_id)).status == "OPEN"
    await gql(UPDATE, {"email": "alice2@example.org"}, token=member.token)
    assert (await DataRequest.get(id=request_id)).status == "OPEN"  # until the address is verified
    await confirm_email(gql, mail_rt, smtp, "alice2@example.org")
    assert (await DataRequest.get(id=request_id)).status == "COMPLETED"
    assert (await Member.get(id=member.id)).status == MemberStatus.ACTIVE


async def test_admin_resolves_and_lifts_restriction(gql, admin, member):
    body = await gql(REPORT, {"f": ["ADDRESS"], "n": "old address"}, token=member.token)
    request_id = body["data"]["reportInaccuracy"]["id"]
    listed = await gql("{ dataRequests(status: OPEN) { id kind status } }", token=admin.token)
    assert listed["data"]["dataRequests"] == [
        {"id": request_id, "kind": "CORRECTION", "status": "OPEN"}]
    body = await gql(RESOLVE, {"id": request_id, "s": "REJECTED", "n": "address is right"},
                     token=admin.token)
    assert body["data"]["resolveDataRequest"]["status"] == "REJECTED"
    assert (await Member.get(id=member.id)).status == MemberStatus.ACTIVE
    assert error_code(await gql(RESOLVE, {"id": request_id, "s": "COMPLETED"},
                                token=admin.token)) == "CONFLICT"
    assert error_code(await gql(RESOLVE, {"id": "nope", "s": "COMPLETED"},
                                token=admin.token)) == "NOT_FOUND"
    assert error_code(await gql(RESOLVE, {"id": request_id, "s": "COMPLETED"},
                                token=member.token)) == "FORBIDDEN"
