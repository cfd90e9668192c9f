"""Announcements cost one row in the request; the ``announcements`` job fans them out.

The request's queries do not depend on the member count; the job notifies every reachable
member exactly once, also with two runs at once, and resumes after a crash between batches.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.rights import Notification
from api.platform.jobs import run_all
from api.service.composition import JOBS
from bench.seed import bulk_members
from tests import helpers_rights
from tests.helpers_partners import ANNOUNCE as ANNOUNCE_PARTNER
from tests.helpers_sql import statements
from tests.test_query_count import count_queries

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures

ANNOUNCE_POLICY = """mutation($v: String!, $t: String!, $at: DateTime!) {
  announcePolicy(version: $v, text: $t, effectiveAt: $at) { version } }"""


def _partner(name: str, directory) -> dict:
    return {"input": {"name": name, "kind": "LOGISTICS", "purpose": "order_fulfillment",
                      "adapter": "jsonl", "config": {"directory": str(directory)},
                      "fields": ["FULL_NAME"], "optionalFields": []}}


async def _announce_counted(gql, admin, clock, version: str, days: int, partner: str,
                            directory) -> tuple[int, int]:
    at = (clock.now() + timedelta(days=days)).isoformat()
    with count_queries() as policy_queries:
        body = await gql(ANNOUNCE_POLICY, {"v": version, "t": "Terms", "at": at},
                         token=admin.token)
    assert "errors" not in body, body
    with count_queries() as partner_queries:
        body = await gql(ANNOUNCE_PARTNER, _partner(partner, directory), token=admin.token)
    assert "errors" not in body, body
    return len(policy_queries), len(partner_queries)


async def test_an_announcement_request_does_not_grow_with_the_members(rt, gql, admin, clock,
                                                                      tmp_path):
    await bulk_members(rt, 3, prefix="a")
    await _announce_counted(gql, admin, clock, "1.5", 31, "Warm", tmp_path)  # lazy registries
    small = await _announce_counted(gql, admin, clock, "2.0", 32, "Small", tmp_path)
    await bulk_members(rt, 27, prefix="b")
    large = await _announce_counted(gql, admin, clock, "3.0", 33, "Large", tmp_path)
    print(f"queries (policy, partner): 3 members -> {small}, 30 members -> {large}")
    assert small == large
    # Nothing is written per member in the request: the job does it (the clock stood still,
    # so all 30 members were there when each of the 6 announcements was made).
    assert await Notification.all().count() == 0
    assert (await run_all(rt, JOBS, ["announcements"]))["announcements"] == {
        "announcements": 6, "notified": 180}
    assert await Notification.all().count() == 180


async def _announce_policy(gql, admin, clock) -> None:
    at = (clock.now() + timedelta(days=31)).isoformat()
    body = await gql(ANNOUNCE_POLICY, {"v": "2.0", "t": "Terms", "at": at}, token=admin.token)
    assert "errors" not in body, body


async def _notified() -> list[str]:
    ids = await Notification.filter(kind="policy.announced").values_list("member_id", flat=True)
    return sorted(str(i) for i in ids)


async def test_two_concurrent_runs_notify_every_reachable_member_once(rt, gql, admin, clock,
                                                                      member, other_member):
    from api.members.announcements import fan_out

    seeded = await bulk_members(rt, 5)
    await Member.filter(id=seeded[0]).update(status=MemberStatus.WITHDRAWN)
    await Member.filter(id=seeded[1]).update(status=MemberStatus.DORMANT)
    await _announce_policy(gql, admin, clock)
    clock.advance(seconds=1)
    await register_later(gql)
    first, second = await asyncio.gather(fan_out(rt, 2), fan_out(rt, 2))
    assert first["notified"] + second["notified"] == 6
    assert await _notified() == sorted([member.id, other_member.id, *seeded[1:]])
    assert (await run_all(rt, JOBS, ["announcements"]))["announcements"] == {
        "announcements": 0, "notified": 0}
    assert len(await _notified()) == 6


async def register_later(gql) -> None:
    """A member who joins after the announcement is not notified of it."""
    from tests.conftest import register_member

    await register_member(gql, "carol")


async def test_a_crash_between_batches_resumes_after_the_last_committed_batch(rt, gql, admin,
                                                                             clock):
    from api.members.announcements import fan_out, fan_out_batch
    from api.models.announcements import Announcement

    seeded = sorted(await bulk_members(rt, 5))
    await _announce_policy(gql, admin, clock)
    [announcement] = await Announcement.all()
    assert await fan_out_batch(rt, str(announcement.id), 2) == 2
    # A worker dies inside the second batch: its transaction rolls back whole.
    with pytest.raises(RuntimeError):
        async with in_transaction("default"):
            assert await fan_out_batch(rt, str(announcement.id), 2) == 2
            raise RuntimeError("worker killed")
    assert await _notified() == seeded[:2]
    row = await Announcement.get(id=announcement.id)
    assert (str(row.cursor), row.batches, row.notified, row.done_at) == (seeded[1], 1, 2, None)
    # The next run picks up from there.
    assert await fan_out(rt, 2) == {"announcements": 1, "notified": 3}
    assert await _notified() == seeded
    row = await Announcement.get(id=announcement.id)
    assert (row.batches, row.notified, row.done_at) == (3, 5, clock.now())


async def test_a_batch_passes_no_member_through_the_worker(rt, gql, admin, clock):
    """Each batch's notifications are made by the database (INSERT ... SELECT): no statement
    brings member ids back to the worker or sends rows built there, whatever the batch size."""
    from api.members.announcements import fan_out

    await bulk_members(rt, 25)
    await _announce_policy(gql, admin, clock)
    with statements() as sent:
        assert await fan_out(rt, 10) == {"announcements": 1, "notified": 25}
    assert len(await _notified()) == 25
    assert max(s.rows for s in sent) <= 1, [(s.sql, s.rows) for s in sent if s.rows > 1]
    assert max(s.params for s in sent) <= 8, [(s.sql, s.params) for s in sent if s.params > 8]


async def test_fanned_out_notifications_are_whole_and_mailed(mail_rt, smtp, gql, admin, clock,
                                                             member, other_member):
    from api.members.announcements import fan_out
    from api.members.mail import send_pending
    from api.models.announcements import Announcement

    await _announce_policy(gql, admin, clock)
    [announcement] = await Announcement.all()
    clock.advance(seconds=5)
    await fan_out(mail_rt, 1)
    rows = await Notification.filter(kind="policy.announced").order_by("member_id")
    assert sorted(str(r.member_id) for r in rows) == sorted([member.id, other_member.id])
    for r in rows:
        assert (r.subject, r.body) == (announcement.subject, announcement.body)
        assert (r.status, r.attempts, r.recipient_ct, r.sent_at, r.last_error) == (
            "PENDING", 0, None, None, None)
        assert r.created_at == r.next_attempt_at == clock.now()
        assert isinstance(r.id, uuid.UUID) and r.id.version == 4
        assert (await Notification.get(id=str(r.id))).member_id == r.member_id
    assert len({r.id for r in rows}) == 2
    await send_pending(mail_rt)
    for address in ("alice@example.org", "bob@example.org"):
        [mail] = [m for m in smtp.to(address) if m["X-Consentry-Kind"] == "policy.announced"]
        assert mail["Subject"] == announcement.subject
