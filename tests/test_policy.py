"""Policy versions over HTTP: 30 days' notice, in force on time by itself, recorded by the job."""

from __future__ import annotations

import json
from datetime import timedelta

from api.models.audit import AuditEntry
from api.models.consent import PolicyVersion
from api.models.rights import Notification
from api.platform.jobs import run_all
from api.service.composition import JOBS
from tests.conftest import error_code
from tests.helpers_consent import cli_store, fresh_token, run_cli

POLICY = "{ policy { version text effectiveAt next { version effectiveAt next { version } } } }"
ANNOUNCE = """mutation($v: String!, $t: String!, $at: DateTime!) {
  announcePolicy(version: $v, text: $t, effectiveAt: $at) { version text effectiveAt } }"""
GIVE = """mutation($p: String!, $v: String!) {
  giveConsent(purpose: $p, policyVersion: $v) { state policyVersion } }"""
def iso(dt) -> str:
    return dt.isoformat()


async def test_initial_policy_is_in_force_from_the_start(gql):
    body = await gql(POLICY)
    policy = body["data"]["policy"]
    assert policy["version"] == "1.0"
    assert policy["text"]
    assert policy["effectiveAt"].startswith("1970-01-01")
    assert policy["next"] is None


async def test_announce_with_less_than_30_days_notice_is_refused(gql, admin, clock):
    for delta in (timedelta(days=29, hours=23, minutes=59), timedelta(0), timedelta(days=-1)):
        body = await gql(ANNOUNCE, {"v": "2.0", "t": "New terms",
                                    "at": iso(clock.now() + delta)}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", body
        assert "30 days" in body["errors"][0]["message"]
    assert await PolicyVersion.filter(version="2.0").count() == 0


async def test_announced_version_comes_into_force_on_time(gql, admin, member, clock, rt):
    effective = clock.now() + timedelta(days=30)
    body = await gql(ANNOUNCE, {"v": "2.0", "t": "Version two", "at": iso(effective)},
                     token=admin.token)
    assert body["data"]["announcePolicy"]["version"] == "2.0"
    policy = (await gql(POLICY))["data"]["policy"]
    assert policy["version"] == "1.0"
    assert policy["next"]["version"] == "2.0"
    assert policy["next"]["next"] is None

    clock.set(effective - timedelta(seconds=1))
    assert (await gql(POLICY))["data"]["policy"]["version"] == "1.0"
    token = await fresh_token(gql, member.user_id)
    assert error_code(await gql(GIVE, {"p": "marketing", "v": "2.0"}, token=token)) \
        == "BAD_USER_INPUT"

    clock.set(effective)  # no job has run: reads already see the new version
    policy = (await gql(POLICY))["data"]["policy"]
    assert policy["version"] == "2.0" and policy["next"] is None
    body = await gql(GIVE, {"p": "marketing", "v": "1.0"}, token=token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert "2.0" in body["errors"][0]["message"]
    body = await gql(GIVE, {"p": "marketing", "v": "2.0"}, token=token)
    assert body["data"]["giveConsent"] == {"state": "GIVEN", "policyVersion": "2.0"}


async def test_jobs_run_records_the_change_once(gql, admin, clock, rt):
    effective = clock.now() + timedelta(days=45)
    await gql(ANNOUNCE, {"v": "2.0", "t": "Version two", "at": iso(effective)},
              token=admin.token)
    assert (await run_all(rt, JOBS, ["policy_in_force"]))["policy_in_force"] == 0
    clock.set(effective + timedelta(hours=1))
    assert (await run_all(rt, JOBS, ["policy_in_force"]))["policy_in_force"] == 1
    row = await PolicyVersion.get(version="2.0")
    assert row.in_force_recorded_at == effective + timedelta(hours=1)
    assert (await run_all(rt, JOBS, ["policy_in_force"]))["policy_in_force"] == 0
    entries = await AuditEntry.filter(action="policy.in_force")
    assert [e.subject for e in entries] == ["policy:2.0"]


async def test_announce_notifies_every_member_durably(rt, gql, admin, member, other_member,
                                                      clock):
    await gql(ANNOUNCE, {"v": "2.0", "t": "Version two",
                         "at": iso(clock.now() + timedelta(days=31))}, token=admin.token)
    assert await Notification.filter(kind="policy.announced").count() == 0  # the job writes them
    assert (await run_all(rt, JOBS, ["announcements"]))["announcements"] == {
        "announcements": 1, "notified": 2}
    notes = await Notification.filter(kind="policy.announced")
    assert sorted(str(n.member_id) for n in notes) == sorted([member.id, other_member.id])
    assert all(n.status == "PENDING" and "2.0" in n.body for n in notes)
    entry = await AuditEntry.get(action="policy.announce")
    assert entry.subject == "policy:2.0" and "announcement" in entry.detail


async def test_duplicate_version_is_a_conflict(gql, admin, clock):
    at = iso(clock.now() + timedelta(days=40))
    assert "errors" not in await gql(ANNOUNCE, {"v": "2.0", "t": "A", "at": at},
                                     token=admin.token)
    later = iso(clock.now() + timedelta(days=50))
    assert error_code(await gql(ANNOUNCE, {"v": "2.0", "t": "B", "at": later},
                                token=admin.token)) == "CONFLICT"
    assert error_code(await gql(ANNOUNCE, {"v": "1.0", "t": "B", "at": later},
                                token=admin.token)) == "CONFLICT"


async def test_next_lists_versions_in_order(gql, admin, clock):
    now = clock.now()
    for version, days in (("3.0", 90), ("2.0", 60)):
        body = await gql(ANNOUNCE, {"v": version, "t": f"v{version}",
                                    "at": iso(now + timedelta(days=days))}, token=admin.token)
        assert "errors" not in body, body
    policy = (await gql(POLICY))["data"]["policy"]
    assert policy["next"]["version"] == "2.0"
    assert policy["next"]["next"]["version"] == "3.0"
    clock.advance(days=75)
    policy = (await gql(POLICY))["data"]["policy"]
    assert policy["version"] == "2.0" and policy["next"]["version"] == "3.0"


async def test_announce_rejects_bad_input(gql, admin, clock):
    at = iso(clock.now() + timedelta(days=40))
    for variables in ({"v": "", "t": "x", "at": at}, {"v": "two point oh", "t": "x", "at": at},
                      {"v": "v" * 41, "t": "x", "at": at}, {"v": "2.0", "t": "   ", "at": at},
                      {"v": "2.0", "t": "nul\u0000byte", "at": at}, {"v": "2.0\u0000", "t": "x", "at": at},
                      {"v": "2.0", "t": "x", "at": "2026-03-01T00:00:00"},
                      {"v": "2.0", "t": "x", "at": "not a date"},
                      {"v": "2.0", "t": "x", "at": "0001-01-01T00:00:00+05:00"},
                      {"v": "2.0", "t": "x", "at": "9999-12-31T23:59:59-05:00"}):
        body = await gql(ANNOUNCE, variables, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", (variables, body)


async def test_announce_needs_an_admin(gql, member, clock):
    variables = {"v": "2.0", "t": "x", "at": iso(clock.now() + timedelta(days=40))}
    assert error_code(await gql(ANNOUNCE, variables)) == "UNAUTHENTICATED"
    assert error_code(await gql(ANNOUNCE, variables, token=member.token)) == "FORBIDDEN"
    assert await PolicyVersion.filter(version="2.0").count() == 0


_ANNOUNCE_PY = """
import asyncio, sys
from datetime import datetime
from api.consent import policy
from api.service.cli import _runtime, _with_db
rt = _runtime()
async def go():
    await policy.announce(rt, "test", "2.0", "Version two", datetime.fromisoformat(sys.argv[1]))
    return 0
asyncio.run(_with_db(rt, go))
"""


async def test_consentry_jobs_run_records_the_change(rt, clock, tmp_path):
    """End to end: the real CLI with its clock pinned by CONSENTRY_NOW; results read from the
    CLI's own output (not before its time, once on time, not again)."""
    store = cli_store(rt, tmp_path)
    assert (await run_cli(store, "migrate"))[0] == 0
    effective = clock.now() + timedelta(days=30)
    code, _, err = await run_cli(store, now=clock.now(), python=_ANNOUNCE_PY.replace(
        "sys.argv[1]", repr(effective.isoformat())))
    assert code == 0, err

    async def jobs_run(at) -> dict:
        code, out, err = await run_cli(store, "jobs", "run", "--only", "policy_in_force", now=at)
        assert code == 0, err
        return json.loads(out.strip().splitlines()[-1])

    assert await jobs_run(effective - timedelta(minutes=1)) == {"policy_in_force": 0}
    assert await jobs_run(effective + timedelta(minutes=5)) == {"policy_in_force": 1}
    assert await jobs_run(effective + timedelta(minutes=6)) == {"policy_in_force": 0}
