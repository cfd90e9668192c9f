"""Consent over HTTP: given against the version in force, withdrawn in one call, event-sourced."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from api.consent import consents as consent
from api.consent.events import ConsentChanged
from api.members import records as members
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState
from api.platform.events import EventBus
from api.service.composition import SUBSCRIBERS
from api.sharing.grants import consents_in_force
from tests.conftest import error_code
from tests.helpers_consent import fresh_token

GIVE = """mutation($p: String!, $v: String!) {
  giveConsent(purpose: $p, policyVersion: $v) { purpose state policyVersion at receipt } }"""
WITHDRAW = """mutation($p: String!) {
  withdrawConsent(purpose: $p) { purpose state policyVersion at receipt } }"""
MY_CONSENTS = "{ me { consents { purpose state policyVersion at receipt } } }"
PURPOSES = "{ purposes { name description legalBasis required } }"


async def test_purposes_are_public_and_list_the_builtins(gql):
    body = await gql(PURPOSES)
    by_name = {p["name"]: p for p in body["data"]["purposes"]}
    assert by_name["membership"]["legalBasis"] == "CONTRACT"
    assert by_name["membership"]["required"] is True
    assert by_name["order_fulfillment"]["legalBasis"] == "CONTRACT"
    for name in ("marketing", "personalization", "health_data", "research"):
        assert by_name[name]["legalBasis"] == "CONSENT"
        assert by_name[name]["required"] is False
        assert by_name[name]["description"]
    # Seeding is idempotent: asking again lists each once.
    again = await gql(PURPOSES)
    assert [p["name"] for p in again["data"]["purposes"]] == list(by_name)


async def test_give_consent_against_the_version_in_force(gql, member):
    body = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    given = body["data"]["giveConsent"]
    assert given["state"] == "GIVEN" and given["policyVersion"] == "1.0"
    assert given["receipt"].count(".") == 2
    mine = (await gql(MY_CONSENTS, token=member.token))["data"]["me"]["consents"]
    assert mine == [given]


async def test_giving_against_another_version_is_refused_naming_the_one_in_force(gql, member):
    body = await gql(GIVE, {"p": "marketing", "v": "0.9"}, token=member.token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert "1.0" in body["errors"][0]["message"]
    assert (await gql(MY_CONSENTS, token=member.token))["data"]["me"]["consents"] == []


async def test_contract_purpose_cannot_be_given_or_withdrawn(gql, member):
    for purpose in ("membership", "order_fulfillment"):
        body = await gql(GIVE, {"p": purpose, "v": "1.0"}, token=member.token)
        assert error_code(body) == "BAD_USER_INPUT", body
        assert error_code(await gql(WITHDRAW, {"p": purpose}, token=member.token)) \
            == "BAD_USER_INPUT"


async def test_unknown_purpose_is_not_found(gql, member):
    for odd in ("p" * 500, "bad\u0000name", "partner:\u0000"):
        assert error_code(await gql(GIVE, {"p": odd, "v": "1.0"}, token=member.token)) \
            == "NOT_FOUND"
    assert error_code(await gql(GIVE, {"p": "astrology", "v": "1.0"}, token=member.token)) \
        == "NOT_FOUND"
    assert error_code(await gql(WITHDRAW, {"p": "astrology"}, token=member.token)) == "NOT_FOUND"


async def test_withdraw_is_one_call_and_takes_effect_at_once(gql, member, rt):
    await gql(GIVE, {"p": "research", "v": "1.0"}, token=member.token)
    assert await consents_in_force([member.id], ["research"], rt.now()) == {
        member.id: frozenset({"research"})}
    # The clock does not move: the withdrawal still wins from the same instant on.
    body = await gql(WITHDRAW, {"p": "research"}, token=member.token)
    assert body["data"]["withdrawConsent"]["state"] == "WITHDRAWN"
    assert await consents_in_force([member.id], ["research"], rt.now()) == {}
    mine = (await gql(MY_CONSENTS, token=member.token))["data"]["me"]["consents"]
    assert [(c["purpose"], c["state"]) for c in mine] == [("research", "WITHDRAWN")]


async def test_withdrawing_a_consent_never_given_is_a_conflict(gql, member):
    body = await gql(WITHDRAW, {"p": "marketing"}, token=member.token)
    assert error_code(body) == "CONFLICT"


async def test_repeated_give_and_withdraw_are_idempotent(gql, member, clock):
    first = (await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token))["data"]
    clock.advance(minutes=1)
    again = (await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token))["data"]
    assert again == first
    w1 = (await gql(WITHDRAW, {"p": "marketing"}, token=member.token))["data"]
    clock.advance(minutes=1)
    w2 = (await gql(WITHDRAW, {"p": "marketing"}, token=member.token))["data"]
    assert w1 == w2
    assert await ConsentEvent.filter(member_id=member.id).count() == 2


async def test_consent_at_a_past_instant_is_rebuilt_from_events(gql, member, clock):
    """The grant rule's read (``consents_in_force``, used by push, pull and delivery) at past
    instants: given on 2 January, withdrawn on 4 January, given again on 7 January 2026."""
    for day, mutation, variables in ((2, GIVE, {"p": "personalization", "v": "1.0"}),
                                     (4, WITHDRAW, {"p": "personalization"}),
                                     (7, GIVE, {"p": "personalization", "v": "1.0"})):
        clock.set(datetime(2026, 1, day, tzinfo=UTC))
        token = await fresh_token(gql, member.user_id)
        assert "errors" not in await gql(mutation, variables, token=token)

    async def at(day: int, hour: int = 0) -> bool:
        held = await consents_in_force([member.id], ["personalization"],
                                       datetime(2026, 1, day, hour, tzinfo=UTC))
        return "personalization" in held.get(member.id, frozenset())

    assert [await at(1), await at(2), await at(3), await at(4), await at(6, 23), await at(7)] \
        == [False, True, True, False, False, True]
    rows = await ConsentEvent.filter(member_id=member.id).order_by("at", "id")
    assert [r.state for r in rows] == [ConsentState.GIVEN, ConsentState.WITHDRAWN,
                                       ConsentState.GIVEN]


async def test_events_record_how_consent_was_given(gql, client, rt, member):
    response = await client.post(
        "/graphql", json={"query": GIVE, "variables": {"p": "health_data", "v": "1.0"}},
        headers={"authorization": f"Bearer {member.token}", "user-agent": "ClinicApp/2.1"})
    assert "errors" not in response.json()
    row = await ConsentEvent.get(member_id=member.id, purpose="health_data")
    key = await members.data_key(rt, member.id)
    assert consent.how_given(key, row) == ("127.0.0.1", "ClinicApp/2.1")
    assert b"ClinicApp" not in bytes(row.user_agent_ct)
    assert row.policy_version == "1.0" and row.state == ConsentState.GIVEN


async def test_consents_in_force_for_many_members_at_once(gql, member, other_member, rt, clock):
    await gql(GIVE, {"p": "research", "v": "1.0"}, token=member.token)
    await gql(GIVE, {"p": "research", "v": "1.0"}, token=other_member.token)
    await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=other_member.token)
    before = clock.now()
    clock.advance(minutes=5)
    await gql(WITHDRAW, {"p": "research"}, token=other_member.token)
    ids = [member.id, other_member.id, "00000000-0000-0000-0000-000000000000"]
    assert await consents_in_force(ids, ["research", "marketing"], rt.now()) == {
        member.id: frozenset({"research"}), other_member.id: frozenset({"marketing"})}
    assert await consents_in_force(ids, ["research"], before) == {
        member.id: frozenset({"research"}), other_member.id: frozenset({"research"})}
    assert await consents_in_force(ids, ["health_data"], rt.now()) == {}


async def test_consent_changes_reach_subscribers_after_commit(gql, rt, member):
    seen: list[tuple[str, str, ConsentState, int]] = []

    async def subscriber(rt_, event: ConsentChanged):
        # Committed already: a fresh read sees the event.
        seen.append((event.member_id, event.purpose, event.state,
                     await ConsentEvent.filter(member_id=event.member_id).count()))

    async def broken(rt_, event: ConsentChanged):
        raise RuntimeError("a failing subscriber does not undo the change")

    rt.events = EventBus({**SUBSCRIBERS,
                          ConsentChanged: (*SUBSCRIBERS[ConsentChanged], broken, subscriber)})
    await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    body = await gql(WITHDRAW, {"p": "marketing"}, token=member.token)
    assert "errors" not in body
    assert seen == [(member.id, "marketing", ConsentState.GIVEN, 1),
                    (member.id, "marketing", ConsentState.WITHDRAWN, 2)]


async def test_a_runtime_without_the_composition_refuses_to_publish(gql, rt, member):
    rt.events = EventBus({})  # assembled without the composition root
    body = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    assert error_code(body) == "INTERNAL"


async def test_give_and_withdraw_are_audited_without_personal_values(gql, member):
    from api.models.audit import AuditEntry

    await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    await gql(WITHDRAW, {"p": "marketing"}, token=member.token)
    rows = await AuditEntry.filter(action__startswith="consent.").order_by("seq")
    assert [r.action for r in rows] == ["consent.give", "consent.withdraw"]
    for row in rows:
        assert row.actor == f"member:{member.id}" and row.subject == member.id
        assert row.detail["purpose"] == "marketing"
        assert "alice" not in str(row.detail).lower()


async def test_consent_operations_need_a_member_token(gql, admin):
    assert error_code(await gql(GIVE, {"p": "marketing", "v": "1.0"})) == "UNAUTHENTICATED"
    assert error_code(await gql(WITHDRAW, {"p": "marketing"})) == "UNAUTHENTICATED"
    assert error_code(await gql(GIVE, {"p": "marketing", "v": "1.0"}, token="not-a-token")) \
        == "UNAUTHENTICATED"
    assert error_code(await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=admin.token)) \
        == "FORBIDDEN"
    assert error_code(await gql(WITHDRAW, {"p": "marketing"}, token=admin.token)) == "FORBIDDEN"


async def test_partner_purposes_join_the_registry(gql, member, rt):
    from tortoise.transactions import in_transaction

    from api.consent import purposes

    partner_id = "5b1c3a52-8f7e-4a55-9d0e-0c4f5ee1a001"
    async with in_transaction("default") as conn:
        name = await purposes.register_partner_purpose(conn, partner_id, "Acme Logistics")
        assert await purposes.register_partner_purpose(conn, partner_id, "Acme") == name
    assert name == f"partner:{partner_id}"
    listed = {p["name"]: p for p in (await gql(PURPOSES))["data"]["purposes"]}
    assert listed[name]["legalBasis"] == "CONSENT"
    body = await gql(GIVE, {"p": name, "v": "1.0"}, token=member.token)
    assert body["data"]["giveConsent"]["state"] == "GIVEN"
    mine = (await gql(MY_CONSENTS, token=member.token))["data"]["me"]["consents"]
    assert [(c["purpose"], c["state"]) for c in mine] == [(name, "GIVEN")]
    assert (await purposes.get_purpose("order_fulfillment")).legal_basis == "CONTRACT"


async def test_concurrent_gives_record_one_event(gql, member):
    bodies = await asyncio.gather(*[
        gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token) for _ in range(6)])
    assert all("errors" not in b for b in bodies), bodies
    assert await ConsentEvent.filter(member_id=member.id, purpose="marketing").count() == 1
    assert len({b["data"]["giveConsent"]["receipt"] for b in bodies}) == 1


async def test_admin_sees_a_members_current_consents(gql, member, admin, clock):
    await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=member.token)
    await gql(GIVE, {"p": "research", "v": "1.0"}, token=member.token)
    clock.advance(minutes=1)
    await gql(WITHDRAW, {"p": "marketing"}, token=member.token)
    body = await gql("query($id: ID!) { member(id: $id) { consents { purpose state } } }",
                     {"id": member.id}, token=admin.token)
    assert body["data"]["member"]["consents"] == [
        {"purpose": "marketing", "state": "WITHDRAWN"}, {"purpose": "research", "state": "GIVEN"}]
