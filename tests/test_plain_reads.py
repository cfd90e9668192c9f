"""The ``me`` reads as plain rows (api/platform/plain_reads.py) give what the ORM gives.

``records.get_view`` (member and data key in one statement) and ``consents.current`` (latest
event per purpose) read values, not models, and on SQLite through a read-only connection on
the event loop. They must answer exactly as the ORM reads they replaced, see a transaction's
own writes inside it, and not wait for (nor see) another task's open transaction.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from tortoise.transactions import in_transaction

from api.consent import consents as consent
from api.consent import policy
from api.core.errors import NotFound
from api.members import records as members
from api.models.consent import ConsentEvent
from api.models.enums import ConsentState, MemberStatus
from api.models.member import Member, MemberKey
from api.platform import plain_reads


async def test_member_view_is_the_orm_view(rt, clock, member):
    key = await members.data_key(rt, member.id)
    await Member.filter(id=member.id).update(
        email_verified_at=clock.now(), has_purchase=True,
        pending_email_ct=key.encrypt("pending_email", "alice.new@example.org"))
    view = await members.get_view(rt, member.id)
    row = await Member.get(id=member.id)
    assert view == members.view_of(row, key)
    assert (view.id, view.user_id, view.email, view.full_name, view.date_of_birth, view.phone,
            view.address, view.status, view.has_purchase, view.email_verified,
            view.pending_email) == (
        member.id, "alice", "alice@example.org", "Alice Example", date(1990, 4, 1),
        "+44 20 7946 0000", "1 Clinic Road, Leeds", MemberStatus.ACTIVE, True, True,
        "alice.new@example.org")
    assert view.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert view.created_at.tzinfo == row.created_at.tzinfo  # the ORM's zone, not just UTC
    assert view.last_active_at.tzinfo == row.last_active_at.tzinfo


async def test_current_consents_are_the_latest_events(rt, clock, member):
    version = (await policy.in_force(rt)).version
    await consent.give(rt, member.id, "marketing", version)
    clock.advance(seconds=5)
    withdrawn = await consent.withdraw(rt, member.id, "marketing")
    await consent.give(rt, member.id, "personalization", version)
    same_instant = await consent.withdraw(rt, member.id, "personalization")  # ties on at: id
    given = await consent.give(rt, member.id, "research", version)
    current = await consent.current(member.id)
    assert [(c.purpose, c.state, c.policy_version) for c in current] == [
        ("marketing", ConsentState.WITHDRAWN, "1.0"),
        ("personalization", ConsentState.WITHDRAWN, "1.0"), ("research", ConsentState.GIVEN, "1.0")]
    assert current == [withdrawn, same_instant, given]
    rows = {str(r.id): r for r in await ConsentEvent.filter(member_id=member.id)}
    for view in current:
        assert view.member_id == member.id
        assert view.at == rows[view.id].at == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
        assert view.at.tzinfo == rows[view.id].at.tzinfo
        assert view.receipt == rows[view.id].receipt


async def test_a_withdrawn_member_or_a_destroyed_key_is_not_found(rt, member, other_member):
    await Member.filter(id=member.id).update(status=MemberStatus.WITHDRAWN)
    with pytest.raises(NotFound):
        await members.get_view(rt, member.id)
    await MemberKey.filter(member_id=other_member.id).delete()
    with pytest.raises(NotFound):
        await members.get_view(rt, other_member.id)


async def test_a_read_inside_a_transaction_sees_its_writes(rt, member):
    async with in_transaction("default") as conn:
        await Member.filter(id=member.id).using_db(conn).update(status=MemberStatus.WITHDRAWN)
        with pytest.raises(NotFound):
            await members.get_view(rt, member.id)
    with pytest.raises(NotFound):
        await members.get_view(rt, member.id)


async def test_a_read_does_not_wait_for_another_tasks_transaction(rt, member):
    """SQLite: tortoise's one connection is held by the open transaction; the read goes on."""
    started, finish = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with in_transaction("default") as conn:
            await Member.filter(id=member.id).using_db(conn).update(status=MemberStatus.WITHDRAWN)
            started.set()
            await finish.wait()

    task = asyncio.create_task(writer())
    await started.wait()
    try:
        view = await asyncio.wait_for(members.get_view(rt, member.id), 30)
        assert view.status == MemberStatus.ACTIVE  # not committed yet: not seen
    finally:
        finish.set()
        await task
    with pytest.raises(NotFound):
        await members.get_view(rt, member.id)


async def test_a_reader_that_cannot_answer_hands_over(rt, member):
    db = Member._meta.db
    if db.capabilities.dialect != "sqlite":
        pytest.skip("the read-only twin connection is SQLite's")
    assert (await members.get_view(rt, member.id)).user_id == "alice"
    reader = plain_reads._reader(db)
    assert reader is not None
    reader.close()  # now every statement on it fails: tortoise's connection answers
    assert (await members.get_view(rt, member.id)).user_id == "alice"
    assert plain_reads._reader(db) not in (reader, None)  # and a new one is opened
    await Member.filter(id=member.id).update(status=MemberStatus.WITHDRAWN)
    with pytest.raises(NotFound):
        await members.get_view(rt, member.id)


async def test_member_and_current_consents_in_one_read(rt, member, other_member):
    version = (await policy.in_force(rt)).version
    first = await consent.give(rt, member.id, "research", version)
    second = await consent.give(rt, member.id, "marketing", version)
    view, current = await consent.member_and_current(rt, member.id)
    assert view == await members.get_view(rt, member.id)
    assert current == await consent.current(member.id) == [second, first]  # by purpose
    view, current = await consent.member_and_current(rt, other_member.id)
    assert (view.user_id, current) == ("bob", [])  # no consent yet: the member all the same
    await Member.filter(id=member.id).update(status=MemberStatus.WITHDRAWN)
    with pytest.raises(NotFound):
        await consent.member_and_current(rt, member.id)
