"""The partner loop's events over HTTP, with the real jobs and real adapters (a webhook
receiver, a jsonl directory, the pull-only adapter): ``member.revoked`` on consent withdrawal,
``member.restricted`` before ``member.correction``, and ``partnerEvents`` (the pull twin of
push: same ids, same order, sealed cursors, minimized at read time, recorded in the ledger)."""

from __future__ import annotations

from typing import Any

from api.models.partner import Disclosure, OutboxEvent
from tests.conftest import PASSWORD, error_code
from tests.helpers_partners import (
    CHANGE,
    RETIRE,
    announce,
    events,
    give,
    long_sessions,  # noqa: F401 - autouse fixture
    partner_token,
    purchase,
    run_jobs,
    withdraw,
)
from tests.receivers import WebhookReceiver

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
EVENTS = """query($first: Int, $after: String) {
  partnerEvents(first: $first, after: $after) {
    edges { cursor node { id type at fields member { ref fullName dateOfBirth address } } }
    pageInfo { hasNextPage endCursor } } }"""
REPORT = "mutation($f: [PersonalField!]!) { reportInaccuracy(fields: $f) { id } }"
PROFILE = "mutation($i: ProfileInput!) { updateProfile(input: $i) { status } }"
WITHDRAW = 'mutation($p: String!) { withdrawMembership(password: $p) { withdrawnAt } }'
DISCLOSURES = "{ me { disclosures { partner fields deletionDueAt deletionConfirmedAt } } }"


async def _pull(gql, token: str, first: int = 100, after: str | None = None) -> dict[str, Any]:
    body = await gql(EVENTS, {"first": first, "after": after}, token=token)
    assert "errors" not in body, body
    return body["data"]["partnerEvents"]


async def test_consent_withdrawal_revokes_the_fields_received_pushed_and_pulled_with_one_id(
        gql, client, admin, member, rt, clock):
    async with WebhookReceiver(SECRET) as receiver:
        pid = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                             adapter="webhook", config={"url": receiver.url, "secret": SECRET},
                             fields=["FULL_NAME", "DATE_OF_BIRTH"], optional=[])
        await give(gql, member, "research")
        clock.advance(days=30)
        await run_jobs(rt)
        clock.advance(seconds=1)
        await withdraw(gql, member, "research")
        await run_jobs(rt)
        pushed = sorted(receiver.unique.values(), key=lambda e: e["type"])
    assert [(e["type"], e["fields"]) for e in pushed] == [
        ("member.revoked", ["dateOfBirth", "fullName"]),
        ("member.shared", ["dateOfBirth", "fullName"])]
    revoked = pushed[0]
    assert set(revoked["member"]) == {"ref"}  # names only, never a value
    assert revoked["member"]["ref"] == pushed[1]["member"]["ref"]

    token = await partner_token(client, gql, admin, pid, ("members:read",))
    page = await _pull(gql, token)
    # the member.shared is no longer granted: left out at read time, like the bridge would
    assert [(n["node"]["id"], n["node"]["type"], n["node"]["fields"]) for n in page["edges"]] == [
        (revoked["id"], "member.revoked", ["FULL_NAME", "DATE_OF_BIRTH"])]
    assert page["edges"][0]["node"]["member"] == {
        "ref": revoked["member"]["ref"], "fullName": None, "dateOfBirth": None, "address": None}
    assert page["pageInfo"]["hasNextPage"] is False

    # the duty shows on the disclosure it concerns: 30 days after the revocation
    body = await gql(DISCLOSURES, token=member.token)
    [row] = body["data"]["me"]["disclosures"]
    assert (row["partner"], row["deletionDueAt"], row["deletionConfirmedAt"]) == (
        "LabCo", "2026-03-02T00:00:01+00:00", None)

    # a second withdrawal-like run sends nothing twice
    await withdraw(gql, member, "research")
    assert await OutboxEvent.filter(type="member.revoked").count() == 1


async def test_an_inaccuracy_report_restricts_then_the_correction_follows(
        gql, client, admin, member, rt, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=[])
    other = await announce(gql, admin, "Mailers", directory=tmp_path, fields=["ADDRESS"],
                           optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    body = await gql(REPORT, {"f": ["FULL_NAME"]}, token=member.token)
    assert "errors" not in body, body
    await run_jobs(rt)
    clock.advance(seconds=1)
    body = await gql(PROFILE, {"i": {"fullName": "Alice Exampel"}}, token=member.token)
    assert body["data"]["updateProfile"]["status"] == "ACTIVE"
    await run_jobs(rt)
    sent = [(e["type"], e["fields"], {k for k in e["member"] if k != "ref"})
            for e in events(tmp_path, "ShipFast")]
    assert sent == [("member.shared", ["address", "fullName"], {"fullName", "address"}),
                    ("member.restricted", ["fullName"], set()),
                    ("member.correction", ["fullName"], {"fullName"})]
    # Mailers never received the name: told nothing
    assert [e["type"] for e in events(tmp_path, "Mailers")] == ["member.shared"]

    token = await partner_token(client, gql, admin, pid, ("members:read",))
    pulled = [(n["node"]["type"], n["node"]["fields"]) for n in (await _pull(gql, token))["edges"]]
    assert pulled == [("member.shared", ["FULL_NAME", "ADDRESS"]),
                      ("member.restricted", ["FULL_NAME"]),
                      ("member.correction", ["FULL_NAME"])]
    del other


async def test_a_pull_only_partner_reads_its_events_in_pages_and_sees_the_erasure(
        gql, client, admin, member, other_member, rt, clock):
    pid = await announce(gql, admin, "PullCo", adapter="pull", config={},
                         fields=["FULL_NAME", "ADDRESS"], optional=[])
    await purchase(gql, admin, member.id)
    await purchase(gql, admin, other_member.id, "order 2")
    clock.advance(days=30)
    await run_jobs(rt)
    # nothing was pushed, nothing disclosed yet: the events wait for the partner
    assert await Disclosure.all().count() == 0
    token = await partner_token(client, gql, admin, pid, ("members:read",))
    first = await _pull(gql, token, first=1)
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await _pull(gql, token, first=10, after=first["pageInfo"]["endCursor"])
    nodes = [e["node"] for e in first["edges"] + rest["edges"]]
    assert sorted((n["type"], n["member"]["fullName"], n["fields"]) for n in nodes) == [
        ("member.shared", "Alice Example", ["FULL_NAME", "ADDRESS"]),
        ("member.shared", "Bob Example", ["FULL_NAME"])]
    assert [n["id"] for n in nodes] == sorted(n["id"] for n in nodes)  # oldest (lowest id) first
    # reading is recorded, one disclosure per event with values
    assert sorted(tuple(r) for r in await Disclosure.all().values_list("channel", "fields_")) \
        == [("pull", ["ADDRESS", "FULL_NAME"]), ("pull", ["FULL_NAME"])]

    alice_ref = next(n["member"]["ref"] for n in nodes if n["member"]["fullName"] == "Alice Example")
    body = await gql(WITHDRAW, {"p": PASSWORD}, token=member.token)
    assert "errors" not in body, body
    await run_jobs(rt)
    after = await _pull(gql, token, after=rest["pageInfo"]["endCursor"])
    [erasure] = [e["node"] for e in after["edges"]]
    assert (erasure["type"], erasure["member"]["ref"]) == ("member.erasure", alice_ref)
    # the cursor is sealed to this list and this partner
    body = await gql(EVENTS, {"after": "not-a-cursor"}, token=token)
    assert error_code(body) == "BAD_USER_INPUT"
    shared = await gql("{ sharedMembers(first: 1) { pageInfo { endCursor } } }", token=token)
    cursor = shared["data"]["sharedMembers"]["pageInfo"]["endCursor"]
    assert error_code(await gql(EVENTS, {"after": cursor}, token=token)) == "BAD_USER_INPUT"
    other = await announce(gql, admin, "OtherCo", adapter="pull", config={},
                           fields=["FULL_NAME"], optional=[])
    other_token = await partner_token(client, gql, admin, other, ("members:read",))
    body = await gql(EVENTS, {"after": first["pageInfo"]["endCursor"]}, token=other_token)
    assert error_code(body) == "BAD_USER_INPUT"


async def test_partner_events_need_the_members_read_scope(gql, client, admin):
    pid = await announce(gql, admin, "PullCo", adapter="pull", config={},
                         fields=["FULL_NAME"], optional=[])
    token = await partner_token(client, gql, admin, pid, ("purchases:write",))
    assert error_code(await gql(EVENTS, token=token)) == "FORBIDDEN"


async def test_narrowing_and_retiring_revoke_at_once_only_what_was_received(
        gql, admin, member, other_member, rt, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=[])
    await purchase(gql, admin, member.id)
    await purchase(gql, admin, other_member.id, "order 2")  # bob has no address
    clock.advance(days=30)
    await run_jobs(rt)
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME"], "o": []}, token=admin.token)
    assert "errors" not in body, body
    # at once, before any job: only alice had received an address
    revoked = await OutboxEvent.filter(type="member.revoked").values_list("member_id",
                                                                          "payload_plain")
    assert [(str(m), p["fields"]) for m, p in revoked] == [(member.id, ["ADDRESS"])]
    body = await gql(RETIRE, {"id": pid}, token=admin.token)
    assert "errors" not in body, body
    revoked = await OutboxEvent.filter(type="member.revoked").values_list("member_id",
                                                                          "payload_plain")
    assert sorted((str(m), p["fields"]) for m, p in revoked) == sorted([
        (member.id, ["ADDRESS"]), (member.id, ["FULL_NAME"]), (other_member.id, ["FULL_NAME"])])
    await run_jobs(rt)  # the job finds the changes claimed: nothing twice
    assert await OutboxEvent.filter(type="member.revoked").count() == 3
    pushed = [(e["type"], e["fields"]) for e in events(tmp_path, "ShipFast")]
    assert sorted(pushed)[:3] == [("member.revoked", ["address"]), ("member.revoked", ["fullName"]),
                                  ("member.revoked", ["fullName"])]
