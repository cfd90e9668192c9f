"""Dormancy (Art. 4.3): notice at 11 months of inactivity, DORMANT at 12 months and no sooner
than 30 days after the notice, personal data moved to the vault, restored on sign-in; the
retention job destroys a member who never came back; deadline flags on data requests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from api.members.dormancy import dormancy
from api.models.audit import AuditEntry
from api.models.enums import MemberStatus
from api.models.member import Member, MemberKey
from api.models.rights import DataRequest, Notification
from api.models.vault import RetainedRecord
from api.platform.jobs import run_all
from api.rights.retention import request_deadlines, retention_expiry
from api.service.composition import JOBS
from tests import helpers_rights
from tests.conftest import LOGIN, PASSWORD, create_admin, register_member
from tests.helpers_rights import contains, store_dump

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures
ROOT = Path(__file__).resolve().parents[1]

ME = "{ me { status email fullName phone address dateOfBirth } }"

# The member fixture registers at the ManualClock's start, 1 January 2026, 00:00 UTC.
NOTICE = datetime(2026, 12, 1, tzinfo=UTC)  # 11 months of inactivity
DORMANT = datetime(2027, 1, 1, tzinfo=UTC)  # 12 months
THIRTEEN_MONTHS = datetime(2027, 2, 1, tzinfo=UTC)


async def _notices(member_id: str) -> int:
    return await Notification.filter(member_id=member_id, kind="dormancy.notice").count()


async def test_notice_at_11_months_dormant_at_12_and_reactivated_on_sign_in(gql, rt, clock,
                                                                             member):
    clock.set(NOTICE - timedelta(days=1))
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 0}
    clock.set(NOTICE)
    assert (await dormancy(rt)) == {"notified": 1, "dormant": 0}
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 0}  # twice = once
    assert await _notices(member.id) == 1
    before = await Member.get(id=member.id)
    secrets = [bytes(before.email_ct), bytes(before.full_name_ct), bytes(before.address_ct),
               bytes((await MemberKey.get(member_id=member.id)).wrapped)]

    clock.set(DORMANT - timedelta(seconds=1))
    assert (await dormancy(rt))["dormant"] == 0
    clock.set(DORMANT)
    assert (await dormancy(rt))["dormant"] == 1
    assert (await dormancy(rt))["dormant"] == 0
    row = await Member.get(id=member.id)
    assert row.status == MemberStatus.DORMANT and row.dormant_since == DORMANT
    assert not await MemberKey.exists(member_id=member.id)
    [record] = await RetainedRecord.filter(member_id=member.id)
    assert record.reason == "DORMANT"
    dump = await store_dump(rt)  # both stores: the vault row is sealed under its own key
    for blob in secrets:
        assert not contains(dump, blob)

    body = await gql(LOGIN, {"u": "alice", "p": PASSWORD})
    assert "errors" not in body, body
    me = await gql(ME, token=body["data"]["login"]["accessToken"])
    assert me["data"]["me"] == {"status": "ACTIVE", "email": "alice@example.org",
                                "fullName": "Alice Example", "phone": "+44 20 7946 0000",
                                "address": "1 Clinic Road, Leeds", "dateOfBirth": "1990-04-01"}
    assert not await RetainedRecord.exists(member_id=member.id)
    assert (await Member.get(id=member.id)).dormancy_notified_at is None


async def test_dormant_no_sooner_than_30_days_after_the_notice(rt, clock, member):
    clock.set(datetime(2027, 1, 6, tzinfo=UTC))  # 12 months and 5 days: the job did not run earlier
    assert (await dormancy(rt)) == {"notified": 1, "dormant": 0}
    clock.advance(days=29)
    assert (await dormancy(rt))["dormant"] == 0
    clock.advance(days=1)
    assert (await dormancy(rt))["dormant"] == 1


# Last activity, then the first instants of the notice and of dormancy. Notice at 11 months and
# DORMANT at 12 counted in whole calendar months back from now; and never sooner than 30 days
# after the notice.
CALENDAR = [
    (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC),
     datetime(2027, 1, 31, tzinfo=UTC)),
    # No 29 February in 2025: twelve months back from any instant of 28 February 2025 is
    # 28 February 2024, before the last activity; from 1 March 00:00 it is 1 March 2024, after
    # it. So DORMANT at midnight, not at the time of day of the last activity.
    (datetime(2024, 2, 29, 9, 30, tzinfo=UTC), datetime(2025, 1, 29, 9, 30, tzinfo=UTC),
     datetime(2025, 3, 1, tzinfo=UTC)),
    # The notice on 1 April 2027 is exactly 30 days before 1 May: dormant on the day.
    (datetime(2026, 5, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC),
     datetime(2027, 5, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize(("last_active", "notice", "dormant"), CALENDAR,
                         ids=["31-january", "29-february", "1-may"])
async def test_notice_and_dormancy_dates_from_calendar_starts(gql, rt, clock, last_active, notice,
                                                              dormant):
    clock.set(last_active)
    dora = await register_member(gql, "dora")
    assert (await Member.get(id=dora.id)).last_active_at == last_active
    clock.set(notice - timedelta(seconds=1))
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 0}
    clock.set(notice)
    assert (await dormancy(rt)) == {"notified": 1, "dormant": 0}
    assert (await Member.get(id=dora.id)).dormancy_notified_at == notice
    clock.set(dormant - timedelta(seconds=1))
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 0}
    clock.set(dormant)
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 1}
    assert (await Member.get(id=dora.id)).dormant_since == dormant


async def test_activity_after_the_notice_resets_it(gql, rt, clock, member):
    clock.set(NOTICE)
    await dormancy(rt)
    clock.advance(days=10)
    assert "errors" not in await gql(LOGIN, {"u": "alice", "p": PASSWORD})
    clock.set(THIRTEEN_MONTHS)
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 0}
    assert (await Member.get(id=member.id)).status == MemberStatus.ACTIVE


async def test_inactive_again_after_a_notice_gets_a_new_one_before_going_dormant(gql, rt, clock,
                                                                                 member):
    clock.set(NOTICE)
    assert (await dormancy(rt))["notified"] == 1
    clock.advance(days=10)
    assert "errors" not in await gql(LOGIN, {"u": "alice", "p": PASSWORD})
    # 12 months after that sign-in: the old notice predates it, so a new one comes first
    clock.set(datetime(2027, 12, 11, tzinfo=UTC))
    assert (await dormancy(rt)) == {"notified": 1, "dormant": 0}
    assert await _notices(member.id) == 2
    clock.advance(days=30)
    assert (await dormancy(rt)) == {"notified": 0, "dormant": 1}


async def test_dormant_member_who_never_returns_is_destroyed_after_retention(rt, clock, member):
    clock.set(NOTICE)
    await dormancy(rt)
    clock.set(DORMANT)
    await dormancy(rt)
    until = datetime(2031, 12, 31, tzinfo=UTC)  # dormant_retention_days, 5 * 365, after DORMANT
    assert (await RetainedRecord.get(member_id=member.id)).retained_until == until
    clock.set(until - timedelta(seconds=1))
    assert await retention_expiry(rt) == {"records": 0, "members": 0}
    clock.set(until + timedelta(seconds=1))
    first = await retention_expiry(rt)
    second = await retention_expiry(rt)
    assert first["members"] == 1 and second == {"records": 0, "members": 0}
    assert not await Member.exists(id=member.id)
    # Read from the vault, never restored on the way out: an ACTIVE moment would let a
    # dormancy run in another process mail the member a fresh notice.
    trail = await AuditEntry.filter(subject=member.id).order_by("seq").values_list("action",
                                                                                flat=True)
    assert [a for a in trail if a.startswith("member.")][-3:] == [
        "member.dormancy_notice", "member.dormant", "member.withdraw"]
    assert await RetainedRecord.all().count() == 0
    dump = await store_dump(rt)
    assert not contains(dump, "alice@example.org")


async def test_jobs_from_two_runners_at_once_give_the_same_result(rt, clock, member, other_member):
    clock.set(NOTICE)
    await asyncio.gather(dormancy(rt), dormancy(rt))
    assert await _notices(member.id) == 1 and await _notices(other_member.id) == 1
    clock.set(DORMANT)
    results = await asyncio.gather(run_all(rt, JOBS, only=["dormancy"]), dormancy(rt))
    assert await Member.filter(status=MemberStatus.DORMANT).count() == 2
    assert await RetainedRecord.all().count() == 2
    assert results[0]["dormancy"] in ({"notified": 0, "dormant": 0}, {"notified": 0, "dormant": 2},
                                      {"notified": 0, "dormant": 1}, "skipped")


async def test_requests_near_or_past_due_are_flagged_once(gql, rt, clock, member, smtp, mail_rt):
    secret = await create_admin(rt, "deadline-admin")
    body = await gql("mutation { reportInaccuracy(fields: [EMAIL]) { id dueAt } }",
                     token=member.token)
    request_id = body["data"]["reportInaccuracy"]["id"]
    clock.advance(days=22)
    assert (await request_deadlines(rt)) == {"flagged": 0}
    clock.advance(days=1, seconds=1)
    assert (await request_deadlines(rt)) == {"flagged": 1}
    assert (await request_deadlines(rt)) == {"flagged": 0}
    row = await DataRequest.get(id=request_id)
    assert row.overdue_flagged_at == clock.now()
    assert await AuditEntry.filter(action="data_request.due_soon", subject=request_id).count() == 1
    login = await gql(LOGIN, {"u": "deadline-admin", "p": PASSWORD,
                              "otp": pyotp.TOTP(secret).at(clock.now())})
    listed = await gql("{ dataRequests(status: OPEN) { id overdueFlaggedAt } }",
                       token=login["data"]["login"]["accessToken"])
    assert listed["data"]["dataRequests"] == [{"id": request_id,
                                               "overdueFlaggedAt": clock.now().isoformat()}]
    await run_all(mail_rt, JOBS, only=["send_mail"])
    [mail] = smtp.to("deadline-admin@clinic.example")
    assert request_id in mail.get_payload() and "alice" not in mail.get_payload()


async def _cli_jobs(rt, at, jobs: list[str], smtp_port: int) -> list[dict]:
    """Two real ``consentry jobs run`` processes at once, their clock pinned at ``at``."""
    s = rt.settings
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(s.data_dir),
           "CONSENTRY_DATABASE_URL": s.main_url, "CONSENTRY_VAULT_DATABASE_URL": s.vault_url,
           "CONSENTRY_NOW": at.isoformat(), "CONSENTRY_SMTP_HOST": "127.0.0.1",
           "CONSENTRY_SMTP_PORT": str(smtp_port)}
    args = [sys.executable, "-m", "api.service.cli", "jobs", "run"]
    for name in jobs:
        args += ["--only", name]
    procs = [await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env,
                                                  stdout=asyncio.subprocess.PIPE,
                                                  stderr=asyncio.subprocess.PIPE)
             for _ in range(2)]
    outs = []
    for proc in procs:
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        outs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outs


@pytest.mark.slow
async def test_two_cli_processes_at_once_give_the_same_result_as_one(rt, clock, smtp, member,
                                                                     other_member):
    jobs = ["dormancy", "send_mail", "retention_expiry", "request_deadlines"]
    await _cli_jobs(rt, NOTICE, jobs, smtp.port)
    assert await _notices(member.id) == 1 and await _notices(other_member.id) == 1
    await _cli_jobs(rt, NOTICE, jobs, smtp.port)  # and again: no change
    # each: the dormancy notice, and the verification mail of the registration
    assert len(smtp.to("alice@example.org")) == 2 and len(smtp.to("bob@example.org")) == 2

    await _cli_jobs(rt, DORMANT, jobs, smtp.port)
    assert await Member.filter(status=MemberStatus.DORMANT).count() == 2
    assert await RetainedRecord.filter(reason="DORMANT").count() == 2

    until = datetime(2031, 12, 31, tzinfo=UTC)  # dormant_retention_days after DORMANT
    assert {r.retained_until for r in await RetainedRecord.all()} == {until}
    await _cli_jobs(rt, until + timedelta(seconds=1), jobs, smtp.port)
    await _cli_jobs(rt, until + timedelta(seconds=2), jobs, smtp.port)  # mails the confirmations
    assert await Member.all().count() == 0 and await RetainedRecord.all().count() == 0
    # Each destroyed member got exactly one withdrawal confirmation.
    for address in ("alice@example.org", "bob@example.org"):
        kinds = sorted(m["X-Consentry-Kind"] for m in smtp.to(address))
        assert kinds == ["account.verify_email", "dormancy.notice", "membership.withdrawn"], kinds
