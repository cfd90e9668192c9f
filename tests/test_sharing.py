"""Push over HTTP with the real ``jsonl`` adapter and the real jobs: who gets which event, when,
with which fields, and what the member sees in ``me.disclosures``."""

from __future__ import annotations

import json

import pytest

from api.members.records import data_key
from api.models.partner import OutboxEvent
from api.platform.jobs import run_all
from api.service.composition import JOBS
from api.sharing import outbox
from api.sharing.outbox import payload_label
from tests.conftest import error_code
from tests.helpers_partners import (
    CHANGE,
    DISCLOSURES,
    PURCHASE,
    RETIRE,
    NarrowAdapter,
    announce,
    credentials,
    events,
    give,
    install_narrow_adapter,
    long_sessions,  # noqa: F401 - autouse fixture
    purchase,
    run_jobs,
    token_response,
    withdraw,
)

PROFILE = "mutation($i: ProfileInput!) { updateProfile(input: $i) { id } }"


def _member_part(event: dict) -> dict:
    return {k: v for k, v in event["member"].items() if k != "ref"}


async def test_nothing_is_pushed_before_thirty_days_then_only_granted_fields(
        gql, admin, member, other_member, rt, clock, tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                   optional=["PHONE"])
    await purchase(gql, admin, member.id)
    await gql(PROFILE, {"i": {"address": "2 Clinic Road, Leeds"}}, token=member.token)
    clock.advance(days=29)
    await run_jobs(rt)
    assert events(tmp_path, "ShipFast") == [] and await OutboxEvent.all().count() == 0

    clock.advance(days=1)
    await run_jobs(rt)
    (event,) = events(tmp_path, "ShipFast")
    assert set(event) == {"id", "type", "partner", "at", "member", "fields"}
    assert (event["type"], event["partner"]) == ("member.shared", "ShipFast")
    assert event["member"]["ref"].startswith("m_")
    assert _member_part(event) == {"fullName": "Alice Example", "address": "2 Clinic Road, Leeds"}


async def _stored(rt, member_id: str) -> list[tuple[str, list[str]]]:
    """Each queued event of the member as written: type and the member payload's field names,
    read from the outbox row itself (decrypted with the member's data key), before delivery."""
    key = await data_key(rt, member_id)
    out = []
    for row in await OutboxEvent.filter(member_id=member_id).order_by("created_at", "id"):
        payload = json.loads(key.decrypt(payload_label(str(row.id)), bytes(row.payload_ct)))
        out.append((row.type, sorted(payload)))
    return out


async def test_queued_events_store_only_granted_fields(gql, admin, member, rt, clock, tmp_path):
    """Minimized when written, not only when delivered: alice holds every field, ShipFast is
    granted FULL_NAME and ADDRESS (PHONE is optional and alice never consented to it)."""
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                   optional=["PHONE"])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_all(rt, JOBS, only=["partner_changes_in_force"])  # queued, not delivered
    clock.advance(seconds=1)
    await gql(PROFILE, {"i": {"phone": "+44 20 7946 1111", "address": "3 Clinic Road, York",
                              "email": "a2@example.org", "dateOfBirth": "1990-04-02"}},
              token=member.token)
    assert await _stored(rt, member.id) == [
        ("member.shared", ["address", "fullName", "ref"]),
        ("member.updated", ["address", "ref"]),
    ]


async def test_the_outbox_refuses_a_payload_beyond_its_declared_fields(rt, member):
    """The last guard at write time: a writer that declares FULL_NAME cannot store a phone."""
    key = await data_key(rt, member.id)
    with pytest.raises(ValueError, match="exactly the fields it declares"):
        await outbox.enqueue(rt, None, partner_id="00000000-0000-0000-0000-000000000001",
                             member_id=member.id, type="member.updated",
                             member={"ref": "m_x", "fullName": "Alice Example",
                                     "phone": "+44 20 7946 0000"},
                             fields=["FULL_NAME"], purpose="order_fulfillment",
                             legal_basis="CONTRACT", key=key)
    assert await OutboxEvent.all().count() == 0


class NameOnlyAdapter(NarrowAdapter):
    """``narrow`` upgraded to a version that takes names only."""

    accepts = frozenset({"fullName"})


async def test_queued_events_store_only_fields_the_adapter_accepts(gql, admin, member, rt, clock):
    install_narrow_adapter(rt)
    await announce(gql, admin, "Narrow", adapter="narrow", config={},
                   fields=["FULL_NAME", "EMAIL"], optional=[])
    await purchase(gql, admin, member.id)
    install_narrow_adapter(rt, "tests.test_sharing:NameOnlyAdapter")  # the plugin narrowed
    clock.advance(days=30)
    await run_all(rt, JOBS, only=["partner_changes_in_force"])
    clock.advance(seconds=1)
    await gql(PROFILE, {"i": {"fullName": "Alice B", "email": "a3@example.org"}},
              token=member.token)
    assert await _stored(rt, member.id) == [
        ("member.shared", ["fullName", "ref"]),
        ("member.updated", ["fullName", "ref"]),
    ]


async def test_jobs_are_idempotent(gql, admin, member, rt, clock, tmp_path):
    await announce(gql, admin, directory=tmp_path)
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    first = await run_all(rt, JOBS, only=["partner_changes_in_force"])
    second = await run_all(rt, JOBS, only=["partner_changes_in_force"])
    assert first["partner_changes_in_force"] == {"applied": 1, "events": 1}
    assert second["partner_changes_in_force"] == {"applied": 0, "events": 0}
    await run_jobs(rt)
    await run_jobs(rt)
    assert len(events(tmp_path, "ShipFast")) == 1


async def test_a_purchase_enqueues_in_its_own_transaction(gql, admin, member, rt, clock,
                                                           tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"], optional=[])
    clock.advance(days=30)
    await run_jobs(rt)  # in force, nobody in scope yet
    assert await OutboxEvent.all().count() == 0
    await purchase(gql, admin, member.id)
    (row,) = await OutboxEvent.all()
    assert (row.type, str(row.member_id)) == ("member.shared", member.id)
    assert b"Alice" not in bytes(row.payload_ct)  # the payload is encrypted at rest
    await purchase(gql, admin, member.id, reference="order 2")  # already in scope
    assert await OutboxEvent.all().count() == 1
    await run_jobs(rt)
    assert [_member_part(e) for e in events(tmp_path, "ShipFast")] == [{"fullName": "Alice Example"}]


async def test_profile_edits_send_only_changed_granted_fields(gql, admin, member, rt, clock,
                                                              tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"], optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    await gql(PROFILE, {"i": {"phone": "+44 20 7946 1111"}}, token=member.token)  # not granted
    await gql(PROFILE, {"i": {"address": "3 Clinic Road, York", "email": "a2@example.org"}},
              token=member.token)
    clock.advance(seconds=1)  # a batch may deliver in any order: partners order by "at"
    await gql(PROFILE, {"i": {"address": None}}, token=member.token)
    await run_jobs(rt)
    sent = sorted(events(tmp_path, "ShipFast"), key=lambda e: e["at"])
    assert [e["type"] for e in sent] == ["member.shared", "member.updated", "member.updated"]
    assert _member_part(sent[1]) == {"address": "3 Clinic Road, York"}
    assert _member_part(sent[2]) == {"address": None}
    assert len({e["member"]["ref"] for e in sent}) == 1


async def test_optional_fields_flow_only_with_consent_and_stop_on_withdrawal(
        gql, admin, member, rt, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"],
                         optional=["PHONE"])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    await give(gql, member, f"partner:{pid}")
    await run_jobs(rt)
    clock.advance(seconds=1)
    await gql(PROFILE, {"i": {"phone": "+44 20 7946 2222"}}, token=member.token)
    await run_jobs(rt)
    await withdraw(gql, member, f"partner:{pid}")
    await run_jobs(rt)
    await gql(PROFILE, {"i": {"phone": "+44 20 7946 3333", "fullName": "Alice C"}},
              token=member.token)
    await run_jobs(rt)
    sent = [(e["type"], _member_part(e), e["fields"]) for e in events(tmp_path, "ShipFast")]
    assert sent == [
        ("member.shared", {"fullName": "Alice Example"}, ["fullName"]),
        ("member.shared", {"fullName": "Alice Example", "phone": "+44 20 7946 0000"},
         ["fullName", "phone"]),
        ("member.updated", {"phone": "+44 20 7946 2222"}, ["phone"]),
        ("member.revoked", {}, ["phone"]),  # the partner must delete the phone it received
        ("member.updated", {"fullName": "Alice C"}, ["fullName"]),
    ]


async def test_an_event_queued_before_withdrawal_never_carries_the_optional_field(
        gql, admin, member, rt, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"],
                         optional=["PHONE"])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    await give(gql, member, f"partner:{pid}")  # queues member.shared with the phone
    clock.advance(seconds=1)
    await withdraw(gql, member, f"partner:{pid}")  # before delivery
    await run_jobs(rt)
    assert all("phone" not in e["member"] for e in events(tmp_path, "ShipFast"))


async def test_consent_partner_gets_members_when_they_consent(gql, admin, member, other_member,
                                                              rt, clock, tmp_path):
    await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH", directory=tmp_path,
                   fields=["DATE_OF_BIRTH"], optional=[])
    await give(gql, member, "research")  # before the partner is in force
    clock.advance(days=30)
    await run_jobs(rt)
    await give(gql, other_member, "research")  # other_member has no date of birth
    await run_jobs(rt)
    sent = events(tmp_path, "LabCo")
    assert [_member_part(e) for e in sent] == [{"dateOfBirth": "1990-04-01"}]
    clock.advance(seconds=1)
    await withdraw(gql, member, "research")
    await gql(PROFILE, {"i": {"dateOfBirth": "1990-04-02"}}, token=member.token)
    await run_jobs(rt)
    sent = events(tmp_path, "LabCo")
    assert [(e["type"], _member_part(e), e["fields"]) for e in sent[1:]] == [
        ("member.revoked", {}, ["dateOfBirth"])]


async def test_a_widening_pushes_after_thirty_days_narrowing_and_retiring_at_once(
        gql, admin, member, rt, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"], optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    await gql(CHANGE, {"id": pid, "f": ["FULL_NAME", "ADDRESS"], "o": []}, token=admin.token)
    clock.advance(days=29)
    await gql(PROFILE, {"i": {"address": "4 Clinic Road, Hull"}}, token=member.token)
    await run_jobs(rt)
    assert [e["type"] for e in events(tmp_path, "ShipFast")] == ["member.shared"]
    clock.advance(days=1)
    await run_jobs(rt)
    last = events(tmp_path, "ShipFast")[-1]
    assert (last["type"], _member_part(last)) == (
        "member.shared", {"fullName": "Alice Example", "address": "4 Clinic Road, Hull"})

    await gql(CHANGE, {"id": pid, "f": ["ADDRESS"], "o": []}, token=admin.token)
    await gql(PROFILE, {"i": {"fullName": "Alice D", "address": "5 Clinic Road, Hull"}},
              token=member.token)
    await run_jobs(rt)
    # the narrowing took the name away: the partner is told to delete it
    assert sorted((e["type"], json.dumps(_member_part(e)), e["fields"])
                  for e in events(tmp_path, "ShipFast")[2:]) == [
        ("member.revoked", "{}", ["fullName"]),
        ("member.updated", '{"address": "5 Clinic Road, Hull"}', ["address"])]
    await gql(RETIRE, {"id": pid}, token=admin.token)
    await gql(PROFILE, {"i": {"address": "6 Clinic Road, Hull"}}, token=member.token)
    await run_jobs(rt)
    assert [(e["type"], e["fields"]) for e in events(tmp_path, "ShipFast")[4:]] == [
        ("member.revoked", ["address"])]  # retired: delete the rest, and nothing new


async def test_restricted_members_get_no_events(gql, admin, member, rt, clock, tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"], optional=[])
    await purchase(gql, admin, member.id)
    await gql("mutation { reportInaccuracy(fields: [FULL_NAME]) { id } }", token=member.token)
    clock.advance(days=30)
    await run_jobs(rt)
    assert events(tmp_path, "ShipFast") == []


async def test_delivered_events_are_disclosures_the_member_sees(gql, admin, member, rt, clock,
                                                                tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"], optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    (seen,) = (await gql(DISCLOSURES, token=member.token))["data"]["me"]["disclosures"]
    assert {k: v for k, v in seen.items() if k != "at"} == {
        "partner": "ShipFast", "fields": ["FULL_NAME", "ADDRESS"],
        "purpose": "order_fulfillment", "legalBasis": "CONTRACT"}


async def test_record_purchase_validates_and_accepts_partner_service_tokens(
        gql, client, admin, member, rt, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path)
    bad = [
        {"a": "0", "c": "EUR", "r": "x"}, {"a": "-3", "c": "EUR", "r": "x"},
        {"a": "1e3", "c": "EUR", "r": "x"}, {"a": "abc", "c": "EUR", "r": "x"},
        {"a": "10", "c": "EURO", "r": "x"}, {"a": "10", "c": "E1R", "r": "x"},
        {"a": "10", "c": "EUR", "r": "x" * 121}, {"a": "10", "c": "EUR", "r": ""},
        {"a": "10", "c": "EUR", "r": "bad\x00ref"},
    ]
    for case in bad:
        body = await gql(PURCHASE, {"m": member.id, **case}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", case
    body = await gql(PURCHASE, {"m": "00000000-0000-0000-0000-000000000009", "a": "1",
                                "c": "EUR", "r": "x"}, token=admin.token)
    assert error_code(body) == "NOT_FOUND"
    body = await gql(PURCHASE, {"m": "nope", "a": "1", "c": "EUR", "r": "x"}, token=admin.token)
    assert error_code(body) == "NOT_FOUND"

    client_id, secret = await credentials(gql, admin, pid, ("purchases:write",))
    token = (await token_response(client, client_id, secret)).json()["access_token"]
    body = await gql(PURCHASE, {"m": member.id, "a": "12.50", "c": "gbp", "r": "INV-1"},
                     token=token)
    assert body["data"]["recordPurchase"]["amount"] == "12.50"
    assert body["data"]["recordPurchase"]["currency"] == "GBP"
    assert body["data"]["recordPurchase"]["reference"] == "INV-1"


async def test_a_member_whose_restriction_is_lifted_enters_the_scope(gql, admin, member, rt,
                                                                      clock, tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"], optional=[])
    clock.advance(days=30)
    await gql("mutation { reportInaccuracy(fields: [ADDRESS]) { id } }", token=member.token)
    await purchase(gql, admin, member.id)  # restricted: shared with nobody yet
    await run_jobs(rt)
    assert events(tmp_path, "ShipFast") == []
    await gql(PROFILE, {"i": {"address": "7 Clinic Road, Leeds"}}, token=member.token)
    await run_jobs(rt)
    (event,) = events(tmp_path, "ShipFast")
    assert (event["type"], _member_part(event)) == (
        "member.shared", {"fullName": "Alice Example", "address": "7 Clinic Road, Leeds"})


async def test_catch_up_job_sends_what_no_hook_did(gql, admin, member, rt, clock, tmp_path):
    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"], optional=[])
    clock.advance(days=30)
    body = await gql("mutation { reportInaccuracy(fields: [ADDRESS]) { id } }",
                     token=member.token)
    request_id = body["data"]["reportInaccuracy"]["id"]
    await purchase(gql, admin, member.id)
    await run_jobs(rt)
    # An admin rejects the report: the restriction ends without any profile edit (no hook).
    body = await gql("mutation($id: ID!) { resolveDataRequest(id: $id, status: REJECTED) "
                     "{ status } }", {"id": request_id}, token=admin.token)
    assert "errors" not in body, body
    await run_jobs(rt)
    assert events(tmp_path, "ShipFast") == []  # the full scan runs every 10 minutes at most
    clock.advance(minutes=10)
    result = await run_jobs(rt)
    assert result["sharing_catch_up"] == {"events": 1}
    (event,) = events(tmp_path, "ShipFast")
    assert (event["type"], _member_part(event)) == ("member.shared", {"fullName": "Alice Example"})
    clock.advance(minutes=10)
    assert (await run_jobs(rt))["sharing_catch_up"] == {"events": 0}


async def test_catch_up_job_sends_what_no_hook_did_for_a_consent_partner(gql, admin, member,
                                                                         other_member, rt, clock,
                                                                         tmp_path):
    await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH", directory=tmp_path,
                   fields=["FULL_NAME"], optional=[])
    clock.advance(days=30)
    await run_jobs(rt)  # the partner comes into force
    await give(gql, other_member, "research")  # in scope, told by the hook
    await run_jobs(rt)
    assert [e["type"] for e in events(tmp_path, "LabCo")] == ["member.shared"]
    body = await gql("mutation { reportInaccuracy(fields: [ADDRESS]) { id } }",
                     token=member.token)
    request_id = body["data"]["reportInaccuracy"]["id"]
    await give(gql, member, "research")  # restricted: nothing is sent
    body = await gql("mutation($id: ID!) { resolveDataRequest(id: $id, status: REJECTED) "
                     "{ status } }", {"id": request_id}, token=admin.token)
    assert "errors" not in body, body
    clock.advance(minutes=10)
    assert (await run_jobs(rt))["sharing_catch_up"] == {"events": 1}
    assert [(e["type"], _member_part(e)) for e in events(tmp_path, "LabCo")][1:] == [
        ("member.shared", {"fullName": "Alice Example"})]


@pytest.mark.parametrize("enters", ["consent", "purchase"])
async def test_entering_a_scope_before_the_change_job_runs_is_shared_once(
        gql, admin, member, rt, clock, tmp_path, enters):
    """The change is in force (its 30 days passed) but the job that applies it has not run:
    the member's own hook sends ``member.shared``, and the job must not send it again."""
    if enters == "consent":
        pid = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                             directory=tmp_path, fields=["DATE_OF_BIRTH"], optional=[])
    else:
        pid = await announce(gql, admin, "LabCo", directory=tmp_path, fields=["FULL_NAME"],
                             optional=[])
    clock.advance(days=30, seconds=1)
    if enters == "consent":
        await give(gql, member, "research")
    else:
        await purchase(gql, admin, member.id)
    assert await OutboxEvent.filter(partner_id=pid, member_id=member.id,
                                    type="member.shared").count() == 1  # by the hook
    await run_jobs(rt)
    clock.advance(minutes=11)  # the catch-up job is due again
    await run_jobs(rt)
    assert await OutboxEvent.filter(partner_id=pid, member_id=member.id,
                                    type="member.shared").count() == 1
    assert [e["type"] for e in events(tmp_path, "LabCo")] == ["member.shared"]


async def test_an_edit_no_partner_could_receive_reads_no_consents(
        gql, admin, member, rt, clock, tmp_path):
    """The profile bridge stops at the partners: ShipFast takes names only, so a new phone
    number asks nothing of the member's consents or objections, and queues nothing; a new name
    does both."""
    from tests.test_query_count import count_queries

    await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"], optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_all(rt, JOBS, only=["partner_changes_in_force"])
    shared_already = await _stored(rt, member.id)
    clock.advance(seconds=1)
    with count_queries() as seen:
        body = await gql(PROFILE, {"i": {"phone": "+44 20 7946 2222"}}, token=member.token)
    assert "errors" not in body, body
    assert [q for q in seen if "consent_events" in q or "partner_objections" in q] == []
    assert await _stored(rt, member.id) == shared_already
    with count_queries() as seen:
        body = await gql(PROFILE, {"i": {"fullName": "Alice Bee"}}, token=member.token)
    assert "errors" not in body, body
    assert [q for q in seen if "consent_events" in q]
    assert (await _stored(rt, member.id))[len(shared_already):] == [
        ("member.updated", ["fullName", "ref"])]
