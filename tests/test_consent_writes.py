"""The consent write path: one round trip per step, the same rows, entries and rules.

``give`` and ``withdraw`` read the member, its data key and its latest event together, and write
the event with its audit entry in one statement (PostgreSQL) or chained at once (SQLite); the
policy in force is remembered while it cannot change; the consent subscribers ask which
partners a purpose concerns before loading any partner.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.consent import consents as consent
from api.consent import policy, receipts
from api.core.errors import NotFound
from api.models.audit import AuditEntry
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, MemberStatus
from api.models.member import Member
from api.models.partner import Partner
from api.platform import audit
from api.sharing import registry
from bench.seed import bulk_members, seed_partner
from tests.helpers_sql import statements


async def test_consent_writes_are_audited_and_the_chain_verifies(rt):
    first, second = await bulk_members(rt, 2, prefix="cw")  # no audit entries of their own
    await consent.give(rt, first, "marketing", "1.0")
    await consent.withdraw(rt, first, "marketing", client="10.0.0.7", user_agent="Clinic/1")
    await asyncio.gather(*(consent.give(rt, m, "research", "1.0") for m in (first, second)))
    await audit.chain_pending()  # PostgreSQL chains after commit; SQLite already has
    assert await audit.unchained() == 0
    assert await audit.verify_chain(chain_first=False) == (4, None)
    rows = await AuditEntry.all().order_by("pos")
    assert [(r.pos, r.action, r.actor, r.subject) for r in rows[:2]] == [
        (1, "consent.give", f"member:{first}", first),
        (2, "consent.withdraw", f"member:{first}", first)]
    events = await ConsentEvent.filter(member_id=first, purpose="marketing").order_by("at", "id")
    assert [(r.state, r.policy_version) for r in events] == [
        (ConsentState.GIVEN, "1.0"), (ConsentState.WITHDRAWN, "1.0")]
    assert rows[1].detail == {"purpose": "marketing", "policyVersion": "1.0",
                              "event": str(events[1].id)}
    assert consent.how_given(await _key(rt, first), events[1]) == ("10.0.0.7", "Clinic/1")


async def _key(rt, member_id):
    from api.members import records as members

    return await members.data_key(rt, member_id)


async def test_the_answer_is_the_stored_event(rt):
    (member,) = await bulk_members(rt, 1, prefix="cw")
    given = await consent.give(rt, member, "personalization", "1.0")
    row = await ConsentEvent.get(id=given.id)
    assert (given.member_id, given.purpose, given.state, given.policy_version, given.at,
            given.receipt) == (member, "personalization", ConsentState.GIVEN, "1.0", row.at,
                               row.receipt)
    claims = jwt.decode(given.receipt, rt.keys.public_key, algorithms=["EdDSA"])
    assert (claims["jti"], claims["state"], claims["purpose"]) == (
        given.id, "GIVEN", "personalization")
    assert jwt.get_unverified_header(given.receipt) == {
        "alg": "EdDSA", "kid": rt.keys.kid, "typ": receipts.RECEIPT_TYPE}
    # Giving again is a safe retry: the same event, read back through the one-statement read.
    assert await consent.give(rt, member, "personalization", "1.0") == given


async def test_concurrent_withdrawals_record_one_event(rt):
    (member,) = await bulk_members(rt, 1, prefix="cw")
    await consent.give(rt, member, "marketing", "1.0")
    answers = await asyncio.gather(*(consent.withdraw(rt, member, "marketing")
                                     for _ in range(6)))
    assert len({a.id for a in answers}) == 1
    assert await ConsentEvent.filter(member_id=member, purpose="marketing").count() == 2


@pytest.mark.parametrize("member_id", ["not-a-uuid", "00000000-0000-0000-0000-0000000000ff"])
async def test_no_consent_for_a_member_that_does_not_exist(rt, member_id):
    with pytest.raises(NotFound):
        await consent.give(rt, member_id, "marketing", "1.0")
    with pytest.raises(NotFound):
        await consent.withdraw(rt, member_id, "marketing")


async def test_no_consent_for_a_withdrawn_member(rt):
    (member,) = await bulk_members(rt, 1, prefix="cw")
    await consent.give(rt, member, "marketing", "1.0")
    await Member.filter(id=member).update(status=MemberStatus.WITHDRAWN)
    with pytest.raises(NotFound):
        await consent.give(rt, member, "research", "1.0")
    with pytest.raises(NotFound):
        await consent.withdraw(rt, member, "marketing")
    assert await ConsentEvent.filter(member_id=member).count() == 1


async def test_the_policy_in_force_follows_the_clock_both_ways(rt, clock):
    assert (await policy.in_force(rt)).version == "1.0"
    effective = clock.now() + timedelta(days=30)
    await policy.announce(rt, "admin:test", "2.0", "Version two", effective)
    assert (await policy.in_force(rt)).version == "1.0"
    clock.set(effective - timedelta(microseconds=1))
    assert (await policy.in_force(rt)).version == "1.0"
    clock.set(effective)
    assert (await policy.in_force(rt)).version == "2.0"
    clock.set(datetime(2025, 12, 31, tzinfo=UTC))  # a clock set back reads again
    assert (await policy.in_force(rt)).version == "1.0"


async def test_a_version_announced_elsewhere_is_in_force_on_time(rt, clock):
    """Another process announces: this runtime's remembered answer ends before it applies."""
    assert (await policy.in_force(rt)).version == "1.0"  # remembered here
    other = dataclasses.replace(rt, extras={})  # its own memory
    await policy.announce(other, "admin:test", "3.0", "Version three",
                          clock.now() + timedelta(days=30))
    clock.advance(days=30)
    assert (await policy.in_force(rt)).version == "3.0"


async def test_partners_a_consent_purpose_concerns(rt):
    seeded = await seed_partner(rt)
    partner = seeded["partner_id"]
    assert await registry.concerned_by("order_fulfillment") == [partner]
    assert await registry.concerned_by(f"partner:{partner}") == [partner]
    assert await registry.concerned_by(f"partner:{partner.upper()}") == [partner]
    assert await registry.concerned_by("marketing") == []
    assert await registry.concerned_by("partner:not-a-uuid") == []
    assert await registry.concerned_by("partner:00000000-0000-0000-0000-000000000001") == []


async def test_asks_made_together_share_one_read_and_later_asks_read_again(rt):
    """Every change of a batch asks which partners its purpose concerns as the batch commits:
    asks on their way together are one statement; an ask after the answer reads afresh (so a
    partner registered since is seen), and a caller that gives up leaves the others theirs."""
    if Partner._meta.db.capabilities.dialect == "sqlite":
        pytest.skip("SQLite reads on its read-only twin: microseconds, made by each caller")
    seeded = await seed_partner(rt)
    partner = seeded["partner_id"]
    with statements() as sent:
        together = [asyncio.ensure_future(registry.concerned_by("order_fulfillment"))
                    for _ in range(5)]
        together[0].cancel()
        answers = await asyncio.gather(*together[1:])
        assert answers == [[partner]] * 4
        assert await registry.concerned_by("order_fulfillment") == [partner]
    reads = [s for s in sent if 'FROM "partners"' in s.sql]
    assert len(reads) == 2


async def test_changes_queued_together_are_decided_in_arrival_order(rt):
    """Changes that arrive together share one transaction; each is decided against the ones
    queued before it, as if it had come alone."""
    first, second = await bulk_members(rt, 2, prefix="cw")
    await policy.in_force(rt)  # remembered: the changes below queue without a database read
    answers = await asyncio.gather(
        consent.give(rt, first, "marketing", "1.0"),
        consent.withdraw(rt, first, "marketing"),
        consent.withdraw(rt, second, "marketing"),
        consent.give(rt, "00000000-0000-0000-0000-0000000000ff", "marketing", "1.0"),
        consent.give(rt, first, "marketing", "1.0"),
        consent.give(rt, first, "marketing", "1.0"),
        return_exceptions=True)
    assert [type(a).__name__ for a in answers] == [
        "ConsentView", "ConsentView", "Conflict", "NotFound", "ConsentView", "ConsentView"]
    assert [a.state for a in answers[:2]] == [ConsentState.GIVEN, ConsentState.WITHDRAWN]
    assert answers[5] == answers[4]  # a retry returns the event already in force
    events = await ConsentEvent.filter(member_id=first).order_by("at", "id")
    assert [(str(e.id), e.state) for e in events] == [
        (answers[0].id, ConsentState.GIVEN), (answers[1].id, ConsentState.WITHDRAWN),
        (answers[4].id, ConsentState.GIVEN)]
    await audit.chain_pending()
    assert await audit.verify_chain(chain_first=False) == (3, None)


async def test_a_change_that_fails_fails_alone(rt):
    """A batch that fails as a whole is tried again change by change: only the change whose
    member's data key cannot be opened (its key-encryption key is not loaded) fails."""
    from api.models.member import MemberKey
    from api.security.envelope import UndecryptableError

    good, broken = await bulk_members(rt, 2, prefix="cw")
    await MemberKey.filter(member_id=broken).update(kek_version=99)
    await policy.in_force(rt)
    answers = await asyncio.gather(consent.give(rt, good, "research", "1.0"),
                                   consent.give(rt, broken, "research", "1.0"),
                                   return_exceptions=True)
    assert [type(a).__name__ for a in answers] == ["ConsentView", "UndecryptableError"]
    assert isinstance(answers[1], UndecryptableError)
    assert [str(e.member_id) for e in await ConsentEvent.all()] == [good]


async def test_each_change_in_a_batch_keeps_its_own_runtime(rt, clock):
    """A runtime with another clock (sharing this one's process-wide objects, as the
    partner-registry helpers make them) queues into the same batch; each event keeps the
    time of the runtime that asked for it, in its row, its receipt and its audit entry."""
    from api.core.clock import ManualClock

    earlier = clock.now() - timedelta(hours=1)
    past = dataclasses.replace(rt, clock=ManualClock(earlier))
    now_member, past_member = await bulk_members(rt, 2, prefix="cw")
    await policy.in_force(past)  # remembered for both: neither change waits before queueing
    answers = await asyncio.gather(consent.give(rt, now_member, "research", "1.0"),
                                   consent.give(past, past_member, "research", "1.0"))
    assert [a.at for a in answers] == [clock.now(), earlier]
    rows = {str(r.member_id): r.at for r in await ConsentEvent.all()}
    assert rows == {now_member: clock.now(), past_member: earlier}
    assert jwt.decode(answers[1].receipt, rt.keys.public_key,
                      algorithms=["EdDSA"])["consentTimestamp"] == earlier.isoformat()
    entries = await AuditEntry.filter(action="consent.give")
    assert {e.subject: e.at for e in entries} == {now_member: clock.now(),
                                                  past_member: earlier}
