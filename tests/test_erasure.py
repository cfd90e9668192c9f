"""Membership withdrawal and erasure (Art. 2.2, 4; invariant 7): destruction at once, tax data
only in the vault until five years after the last purchase, partners told to erase."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from datetime import UTC, datetime, timedelta

from api.members import vault
from api.members.mail import send_pending
from api.members.records import data_key
from api.models.accounts import AccountToken, MailSecret
from api.models.enums import DataRequestStatus, PersonalField
from api.models.member import Member, MemberKey
from api.models.partner import OutboxEvent
from api.models.rights import DataRequest, Notification
from api.models.vault import RetainedRecord
from api.platform.jobs import run_all
from api.service import keys_rotation
from api.service.composition import JOBS
from api.sharing import purchases
from api.sharing.outbox import enqueue
from api.sharing.refs import partner_ref
from partners.recording import RecordingAdapter
from tests import helpers_rights
from tests.conftest import LOGIN, PASSWORD, error_code
from tests.helpers_rights import announce, contains, disclose, store_dump

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures

WITHDRAW = """mutation($p: String!) { withdrawMembership(password: $p) {
  withdrawnAt destroyed retainedUntil retainedFields partnersNotified } }"""
PERSONAL = ("alice@example.org", "Alice Example", "+44 20 7946 0000", "1 Clinic Road, Leeds",
            "1990-04-01")


async def _secrets_of(member_id: str) -> list[bytes]:
    """Every ciphertext and the wrapped key of a member: none may survive destruction."""
    row = await Member.get(id=member_id)
    key = await MemberKey.get(member_id=member_id)
    blobs = [bytes(key.wrapped)]
    for col in ("user_id_ct", "email_ct", "full_name_ct", "date_of_birth_ct", "phone_ct",
                "address_ct"):
        if getattr(row, col):
            blobs.append(bytes(getattr(row, col)))
    return blobs


async def test_wrong_password_is_refused_and_nothing_changes(gql, member):
    body = await gql(WITHDRAW, {"p": "not my password at all"}, token=member.token)
    assert error_code(body) == "UNAUTHENTICATED"
    assert await Member.exists(id=member.id)
    assert error_code(await gql(WITHDRAW, {"p": PASSWORD})) == "UNAUTHENTICATED"
    codes = [error_code(await gql(WITHDRAW, {"p": f"guess number {i}"}, token=member.token))
             for i in range(5)]
    assert codes[-1] == "RATE_LIMITED"  # guessing with a stolen token is slowed, then refused
    assert await Member.exists(id=member.id)


async def test_non_purchasing_member_leaves_no_trace(gql, rt, clock, member, other_member, smtp,
                                                     mail_rt, caplog):
    caplog.set_level(logging.DEBUG)
    tag = uuid.uuid4().hex
    partner_id = await announce(rt, f"Parcel {tag}", ["FULL_NAME", "ADDRESS"], f"e-{tag}")
    clock.advance(days=31)
    await gql("""mutation { giveConsent(purpose: "marketing", policyVersion: "1.0") { state } }""",
              token=(await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]["accessToken"])
    from api.models.partner import Partner

    partner = await Partner.get(id=partner_id)
    await disclose(rt, partner, member.id, ["FULL_NAME", "ADDRESS"])
    key = await data_key(rt, member.id)
    pending = await enqueue(rt, None, partner_id=partner_id, member_id=member.id,
                            type="member.updated",
                            member={"ref": partner_ref(rt.keys, partner_id, member.id),
                                    "fullName": "Alice Example"},
                            fields=["FULL_NAME"], purpose="order_fulfillment",
                            legal_basis="CONTRACT", key=key)
    token = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]["accessToken"]
    await gql("""mutation { reportInaccuracy(fields: [PHONE], note: "+44 20 7946 0000 is old") {
        id } }""", token=token)
    secrets = await _secrets_of(member.id)
    live = await _secrets_of(other_member.id)

    queued = list(await Notification.filter(member_id=member.id).values_list("id", flat=True))
    assert await MailSecret.filter(notification_id__in=queued).count() == 1  # verify-email link

    body = await gql(WITHDRAW, {"p": PASSWORD}, token=token)
    assert "errors" not in body, body
    receipt = body["data"]["withdrawMembership"]
    assert receipt["destroyed"] is True
    assert receipt["retainedUntil"] is None and receipt["retainedFields"] == []
    assert receipt["partnersNotified"] == [f"Parcel {tag}"]

    # Gone: rows, key, sessions; the pending personal event too; one erasure event (ref only).
    assert not await Member.exists(id=member.id)
    assert not await MemberKey.exists(member_id=member.id)
    assert not await OutboxEvent.exists(id=pending)
    [erasure] = await OutboxEvent.filter(type="member.erasure")
    assert erasure.payload_ct is None and erasure.member_id is None
    assert erasure.payload_plain["ref"] == partner_ref(rt.keys, partner_id, member.id)
    assert error_code(await gql(LOGIN, {"u": "alice", "p": PASSWORD})) == "UNAUTHENTICATED"
    assert error_code(await gql("{ me { id } }", token=token)) == "UNAUTHENTICATED"
    requests = await DataRequest.all()
    assert {r.kind for r in requests} == {"CORRECTION", "ERASURE"}
    assert all(r.member_id is None and r.note_ct is None for r in requests)
    assert all(r.status == DataRequestStatus.COMPLETED for r in requests)

    # The partner gets the erasure notice; the member the confirmation, at the SMTP server.
    await run_all(rt, JOBS, only=["deliver_outbox"])
    [event] = [e.to_dict() for e in RecordingAdapter.events(f"e-{tag}")]
    assert event["type"] == "member.erasure" and set(event["member"]) == {"ref"}
    assert event["fields"] == ["address", "fullName"]  # all it was ever sent, to delete
    assert await AccountToken.filter(member_id=member.id).count() == 0
    assert await MailSecret.filter(notification_id__in=queued).count() == 0
    assert (await send_pending(mail_rt))["SENT"] >= 1
    [mail] = smtp.to("alice@example.org")
    assert mail["Subject"] == "Your membership has been withdrawn"
    assert "Alice" not in mail.get_payload()
    assert await Notification.filter(recipient_ct__isnull=False).count() == 0

    dump = await store_dump(rt)
    assert all(contains(dump, blob) for blob in live)  # the scan does see live data
    for value in PERSONAL:
        assert not contains(dump, value), value
    for blob in secrets:
        assert not contains(dump, blob)
    # Everything our process logged (SQL included), except the test SMTP server's own log.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    for value in PERSONAL:
        assert value not in logged


async def test_purchasing_member_keeps_tax_data_only_in_the_vault_for_five_years(
        gql, rt, clock, member):
    first = clock.now()
    await purchases.record_purchase(rt, "admin:test", member.id, amount="10.00",
                                    currency="EUR", reference="INV-0001")
    clock.advance(days=400)
    last = clock.now()
    await purchases.record_purchase(rt, "admin:test", member.id, amount="20.00",
                                    currency="EUR", reference="INV-0002")
    clock.advance(days=30)
    secrets = await _secrets_of(member.id)
    token = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]["accessToken"]
    body = await gql(WITHDRAW, {"p": PASSWORD}, token=token)
    receipt = body["data"]["withdrawMembership"]
    assert receipt["destroyed"] is False
    assert last == datetime(2027, 2, 5, tzinfo=UTC)
    until = datetime(2032, 2, 5, tzinfo=UTC)  # five years after the last purchase
    assert receipt["retainedUntil"] == "2032-02-05T00:00:00+00:00"
    assert receipt["retainedFields"] == ["FULL_NAME", "ADDRESS"]
    assert first < last

    # Main store: nothing of the member. Vault: one TAX record, only the documented fields.
    assert not await Member.exists(id=member.id)
    [record] = await RetainedRecord.all()
    assert record.reason == "TAX" and record.retained_until == until
    kept = (await vault.load(rt, str(record.id))).data
    assert kept["fields"] == {"fullName": "Alice Example", "address": "1 Clinic Road, Leeds"}
    assert [p["reference"] for p in kept["purchases"]] == ["INV-0001", "INV-0002"]
    dump = await store_dump(rt)
    for value in (*PERSONAL, "INV-0001"):
        assert not contains(dump, value), value
    for blob in secrets:
        assert not contains(dump, blob)

    # Kept until five years after the last purchase, then destroyed by the job (twice = once).
    clock.set(until - timedelta(days=1))
    assert (await run_all(rt, JOBS, only=["retention_expiry"]))["retention_expiry"]["records"] == 0
    assert await RetainedRecord.exists(id=record.id)
    clock.set(until + timedelta(seconds=1))
    first_run = await run_all(rt, JOBS, only=["retention_expiry"])
    second_run = await run_all(rt, JOBS, only=["retention_expiry"])
    assert first_run["retention_expiry"]["records"] == 1
    assert second_run["retention_expiry"]["records"] == 0
    assert not await RetainedRecord.exists(id=record.id)


async def test_tax_retention_from_a_leap_day_ends_on_28_february(gql, rt, clock, member):
    clock.set(datetime(2028, 2, 29, 15, 0, tzinfo=UTC))
    await purchases.record_purchase(rt, "admin:test", member.id, amount="10.00",
                                    currency="EUR", reference="INV-0029")
    clock.set(datetime(2028, 3, 10, tzinfo=UTC))
    token = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]["accessToken"]
    receipt = (await gql(WITHDRAW, {"p": PASSWORD}, token=token))["data"]["withdrawMembership"]
    assert receipt["retainedUntil"] == "2033-02-28T15:00:00+00:00"
    [record] = await RetainedRecord.all()
    assert record.retained_until == datetime(2033, 2, 28, 15, 0, tzinfo=UTC)


async def test_erasure_request_resolved_by_admin_follows_the_same_path(gql, rt, admin, member):
    body = await gql("mutation { requestErasure { id kind status dueAt receivedAt } }",
                     token=member.token)
    req = body["data"]["requestErasure"]
    assert req["kind"] == "ERASURE" and req["status"] == "OPEN"
    assert error_code(await gql("mutation { requestErasure { id } }",
                                token=member.token)) == "CONFLICT"
    listed = await gql("{ dataRequests { id kind status } }", token=admin.token)
    assert {"id": req["id"], "kind": "ERASURE", "status": "OPEN"} in listed["data"]["dataRequests"]
    body = await gql("""mutation($id: ID!) { resolveDataRequest(id: $id, status: COMPLETED) {
        id status resolvedAt } }""", {"id": req["id"]}, token=admin.token)
    assert body["data"]["resolveDataRequest"]["status"] == "COMPLETED"
    assert not await Member.exists(id=member.id)
    row = await DataRequest.get(id=req["id"])
    assert row.member_id is None and row.status == DataRequestStatus.COMPLETED
    assert await Notification.filter(kind="membership.withdrawn").count() == 1


async def test_key_rotation_rewraps_vault_records(gql, rt, member):
    await purchases.record_purchase(rt, "admin:test", member.id, amount="5.00", currency="EUR",
                                    reference="INV-R")
    await gql(WITHDRAW, {"p": PASSWORD}, token=member.token)
    [record] = await RetainedRecord.all()
    old = rt.keys.active_kek
    rotated = dataclasses.replace(rt.keys, keks={**rt.keys.keks, old + 1: b"\x07" * 32},
                                  active_kek=old + 1)
    rt2 = dataclasses.replace(rt, keys=rotated)
    counts = await keys_rotation.rotate(rt2)
    assert counts["vault_records"] == 1
    assert (await RetainedRecord.get(id=record.id)).kek_version == old + 1
    only_new = dataclasses.replace(rotated, keks={old + 1: b"\x07" * 32})
    kept = await vault.load(dataclasses.replace(rt, keys=only_new), str(record.id))
    assert kept.data["purchases"][0]["reference"] == "INV-R"
    assert PersonalField.FULL_NAME.graphql in kept.data["fields"]


async def test_two_withdrawals_at_once_destroy_once(gql, rt, member):
    await purchases.record_purchase(rt, "admin:test", member.id, amount="5.00", currency="EUR",
                                    reference="INV-C")
    bodies = await asyncio.gather(gql(WITHDRAW, {"p": PASSWORD}, token=member.token),
                                  gql(WITHDRAW, {"p": PASSWORD}, token=member.token))
    assert sorted(error_code(b) or "OK" for b in bodies) == ["NOT_FOUND", "OK"]
    assert await RetainedRecord.all().count() == 1
    assert await Notification.filter(kind="membership.withdrawn").count() == 1


async def test_history_is_purged_after_destruction_by_a_job(gql, rt, member):
    """Destruction does constant work: consent events and disclosures (ids and ciphertexts
    under the shredded key) are deleted by the history_purge job, twice = once."""
    from api.models.consent import ConsentEvent
    from api.models.ops import HistoryPurge
    from api.rights.erasure import history_purge

    token = (await gql(LOGIN, {"u": "alice", "p": PASSWORD}))["data"]["login"]["accessToken"]
    for purpose in ("marketing", "research"):
        await gql("mutation($p: String!) { giveConsent(purpose: $p, policyVersion: \"1.0\") "
                  "{ state } }", {"p": purpose}, token=token)
    assert "errors" not in await gql(WITHDRAW, {"p": PASSWORD}, token=token)
    assert await ConsentEvent.filter(member_id=member.id).count() == 2
    assert await HistoryPurge.exists(member_id=member.id)
    assert (await history_purge(rt))["consentEvents"] == 2
    assert not await ConsentEvent.exists(member_id=member.id)
    assert await history_purge(rt) == {"members": 0, "consentEvents": 0, "disclosures": 0}
