"""Deletion duties over HTTP with the real jobs: a ``member.revoked`` obliges the partner to
delete within 30 days; overdue on day 31 it is mailed to the admins (real SMTP, once), listed
for them and counted in a gauge; the partner confirms with ``confirmDeletion`` (scope
``events:ack``) or its adapter's ``confirm``; the member sees both dates in ``me.disclosures``."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar

from api.models.partner import OutboxEvent
from api.models.partner_loop import DeletionDuty
from api.platform.jobs import run_all
from api.platform.metrics import metrics_of, refresh_gauges
from api.service.composition import JOBS
from api.sharing import adapters
from partners.base import PartnerAdapter, PartnerEvent
from tests import helpers_rights
from tests.conftest import PASSWORD, error_code
from tests.helpers_partners import (
    announce,
    give,
    long_sessions,  # noqa: F401 - autouse fixture
    partner_token,
    purchase,
    run_jobs,
    withdraw,
)

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures

CONFIRM = "mutation($ids: [ID!]!) { confirmDeletion(eventIds: $ids) }"
DUTIES = """query($o: Boolean) { deletionDuties(overdue: $o) {
  eventId partner kind fields dueAt confirmedAt overdue } }"""
DISCLOSURES = "{ me { disclosures { partner fields deletionDueAt deletionConfirmedAt } } }"


async def _revoked(gql, admin, member, rt, clock, tmp_path, adapter: str = "jsonl") -> str:
    """LabCo received the name and birth date; the member withdraws: one member.revoked."""
    pid = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                         adapter=adapter, config={"directory": str(tmp_path)},
                         fields=["FULL_NAME", "DATE_OF_BIRTH"], optional=[])
    await give(gql, member, "research")
    clock.advance(days=30)
    await run_jobs(rt)
    await withdraw(gql, member, "research")
    await run_jobs(rt)
    return pid


async def _jobs(rt) -> dict:
    return await run_all(rt, JOBS, only=["deletion_duties", "send_mail"])


async def test_an_unconfirmed_duty_is_overdue_on_day_31_mailed_once_and_listed(
        gql, admin, member, mail_rt, smtp, clock, tmp_path):
    rt = mail_rt
    await _revoked(gql, admin, member, rt, clock, tmp_path)
    [duty] = (await gql(DUTIES, {"o": None}, token=admin.token))["data"]["deletionDuties"]
    assert (duty["partner"], duty["kind"], duty["fields"], duty["dueAt"], duty["overdue"]) == (
        "LabCo", "member.revoked", ["FULL_NAME", "DATE_OF_BIRTH"], "2026-03-02T00:00:00+00:00",
        False)
    clock.advance(days=29, hours=23)
    assert (await _jobs(rt))["deletion_duties"] == {"confirmed": 0, "overdue_mailed": 0}
    clock.advance(days=1, hours=1)  # day 31
    assert (await _jobs(rt))["deletion_duties"] == {"confirmed": 0, "overdue_mailed": 1}
    await _jobs(rt)
    [mail] = smtp.to("root-admin@clinic.example")
    assert mail["Subject"] == "LabCo has not confirmed a deletion"
    body = mail.get_payload(decode=True).decode()
    assert duty["eventId"] in body and "Alice" not in body and "alice" not in body
    listed = (await gql(DUTIES, {"o": True}, token=admin.token))["data"]["deletionDuties"]
    assert [(d["eventId"], d["overdue"]) for d in listed] == [(duty["eventId"], True)]
    await refresh_gauges(rt)
    assert metrics_of(rt).registry.get_sample_value("consentry_deletion_duties_overdue") == 1.0


async def test_the_partner_confirms_and_the_member_sees_it(gql, client, admin, member, rt, clock,
                                                           tmp_path):
    pid = await _revoked(gql, admin, member, rt, clock, tmp_path)
    [event_id] = [str(i) for i in await OutboxEvent.filter(type="member.revoked").values_list(
        "id", flat=True)]
    without = await partner_token(client, gql, admin, pid, ("members:read",))
    assert error_code(await gql(CONFIRM, {"ids": [event_id]}, token=without)) == "FORBIDDEN"
    clock.advance(days=3)
    token = await partner_token(client, gql, admin, pid, ("events:ack",))
    assert (await gql(CONFIRM, {"ids": [event_id]}, token=token))["data"] == {"confirmDeletion": 1}
    assert (await gql(CONFIRM, {"ids": [event_id]}, token=token))["data"] == {"confirmDeletion": 0}
    [row] = (await gql(DISCLOSURES, token=member.token))["data"]["me"]["disclosures"]
    assert row == {"partner": "LabCo", "fields": ["FULL_NAME", "DATE_OF_BIRTH"],
                   "deletionDueAt": "2026-03-02T00:00:00+00:00",
                   "deletionConfirmedAt": "2026-02-03T00:00:00+00:00"}
    assert (await gql(DUTIES, {"o": True}, token=admin.token))["data"]["deletionDuties"] == []


async def test_confirming_what_is_not_this_partners_deletion_event_confirms_nothing(
        gql, client, admin, member, other_member, rt, clock, tmp_path):
    pid = await _revoked(gql, admin, member, rt, clock, tmp_path)
    other = await announce(gql, admin, "ShipFast", directory=tmp_path, fields=["FULL_NAME"],
                           optional=[])
    await purchase(gql, admin, other_member.id)
    clock.advance(days=30)
    await run_jobs(rt)
    [revoked] = [str(i) for i in await OutboxEvent.filter(type="member.revoked").values_list(
        "id", flat=True)]
    [shared] = [str(i) for i in await OutboxEvent.filter(
        type="member.shared", partner_id=pid).values_list("id", flat=True)]
    [foreign] = [str(i) for i in await OutboxEvent.filter(partner_id=other).values_list(
        "id", flat=True)]
    token = await partner_token(client, gql, admin, pid, ("events:ack",))
    for bad in ([revoked, shared], [revoked, foreign],
                [revoked, "7d0c6f50-0000-4000-8000-000000000000"], [revoked, "nope"], []):
        body = await gql(CONFIRM, {"ids": bad}, token=token)
        assert error_code(body) == "BAD_USER_INPUT", (bad, body)
    assert await DeletionDuty.filter(confirmed_at__isnull=False).count() == 0


class ConfirmingAdapter(PartnerAdapter):
    """A real adapter whose receiver reports the deletions it carried out."""

    name = "confirming"
    accepts = frozenset({"fullName", "dateOfBirth"})
    received: ClassVar[list[str]] = []

    async def deliver(self, event: PartnerEvent) -> None:
        if event.type == "member.revoked":
            type(self).received.append(event.id)

    async def confirm(self, event_ids: Sequence[str]) -> Sequence[str]:
        return [i for i in event_ids if i in type(self).received] + ["not-an-event"]


async def test_a_push_adapter_confirms_through_its_contract(gql, admin, member, rt, clock,
                                                            tmp_path):
    extra = EntryPoint(name="confirming", value="tests.test_deletion_duties:ConfirmingAdapter",
                       group=adapters.GROUP)
    rt.extras["partner_adapters"] = adapters.discover([*entry_points(group=adapters.GROUP), extra])
    ConfirmingAdapter.received.clear()
    await _revoked(gql, admin, member, rt, clock, tmp_path, adapter="confirming")
    assert len(ConfirmingAdapter.received) == 1
    assert (await run_all(rt, JOBS, only=["deletion_duties"]))["deletion_duties"] == {
        "confirmed": 1, "overdue_mailed": 0}
    [duty] = await DeletionDuty.all()
    assert (str(duty.event_id), duty.confirmed_by) == (ConfirmingAdapter.received[0], "adapter")


async def test_a_destroyed_members_duty_stays_without_the_member_id(gql, admin, member, rt, clock,
                                                                    tmp_path):
    await _revoked(gql, admin, member, rt, clock, tmp_path)
    body = await gql('mutation($p: String!) { withdrawMembership(password: $p) { withdrawnAt } }',
                     {"p": PASSWORD}, token=member.token)
    assert "errors" not in body, body
    await run_all(rt, JOBS, only=["deletion_duties"])
    duties = sorted((d.kind, d.member_id) for d in await DeletionDuty.all())
    assert duties == [("member.erasure", None), ("member.revoked", None)]


async def test_the_history_purge_forgets_the_member_id_in_its_duties_too(gql, admin, member, rt,
                                                                        clock, tmp_path):
    await _revoked(gql, admin, member, rt, clock, tmp_path)
    body = await gql('mutation($p: String!) { withdrawMembership(password: $p) { withdrawnAt } }',
                     {"p": PASSWORD}, token=member.token)
    assert "errors" not in body, body
    await run_all(rt, JOBS, only=["history_purge"])  # deletion_duties has not run since
    duties = sorted((d.kind, d.member_id) for d in await DeletionDuty.all())
    assert duties == [("member.erasure", None), ("member.revoked", None)]
