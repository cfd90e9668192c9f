"""Before a partner change takes effect (partner loop, item 4): ``me.upcomingDisclosures``
shows what an announced change would give the partner of this member's data, and
``objectToPartner`` keeps the member out of its consent scope, now and on day 31. Over HTTP,
with the real jobs and the real ``jsonl`` adapter."""

from __future__ import annotations

import uuid
from dataclasses import replace

from api.models.announcements import Announcement
from api.models.audit import AuditEntry
from api.models.rights import Notification
from tests.conftest import error_code
from tests.helpers_partners import (
    RETIRE,
    announce,
    events,
    give,
    long_sessions,  # noqa: F401 - autouse fixture
    nodes,
    partner_token,
    purchase,
    run_jobs,
)

UPCOMING = "{ me { upcomingDisclosures { partnerId partner fields legalBasis effectiveAt objected } } }"
OBJECT = """mutation($p: ID!) { objectToPartner(partnerId: $p) {
  partnerId partner fields legalBasis effectiveAt objected } }"""


async def _upcoming(gql, member) -> list[dict]:
    body = await gql(UPCOMING, token=member.token)
    assert "errors" not in body, body
    return body["data"]["me"]["upcomingDisclosures"]


async def _object(gql, member, partner_id: str) -> dict:
    body = await gql(OBJECT, {"p": partner_id}, token=member.token)
    assert "errors" not in body, body
    return body["data"]["objectToPartner"]


async def test_an_objection_during_the_30_days_keeps_the_member_out_on_day_31(
        gql, client, admin, member, other_member, rt, clock, tmp_path):
    pid = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                         directory=tmp_path, fields=["FULL_NAME", "DATE_OF_BIRTH"], optional=[])
    await give(gql, member, "research")
    await give(gql, other_member, "research")
    assert await _upcoming(gql, member) == [{
        "partnerId": pid, "partner": "LabCo", "fields": ["FULL_NAME", "DATE_OF_BIRTH"],
        "legalBasis": "CONSENT",
        "effectiveAt": "2026-01-31T00:00:00+00:00", "objected": False}]

    answer = await _object(gql, member, pid)
    assert answer == {"partnerId": pid, "partner": "LabCo", "fields": [],
                      "legalBasis": "CONSENT", "effectiveAt": "2026-01-31T00:00:00+00:00",
                      "objected": True}
    assert await _upcoming(gql, member) == [answer]
    assert (await _object(gql, member, pid))["objected"] is True  # twice: still one objection

    clock.advance(days=31)
    await run_jobs(rt)
    pushed = events(tmp_path, "LabCo")
    assert [e["type"] for e in pushed] == ["member.shared"]  # the other member's only
    token = await partner_token(client, gql, admin, pid, ("members:read",))
    assert [n["fullName"] for n in await nodes(gql, token)] == ["Bob Example"]

    body = await gql("{ partners { name objections } }", token=admin.token)
    assert body["data"]["partners"] == [{"name": "LabCo", "objections": 1}]
    entries = await AuditEntry.filter(action="partner.objection").values("actor", "subject")
    assert entries == [{"actor": f"member:{member.id}", "subject": pid}]


async def test_objecting_while_shared_on_consent_revokes_at_once(
        gql, admin, member, rt, clock, tmp_path):
    pid = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                         directory=tmp_path, fields=["FULL_NAME", "DATE_OF_BIRTH"], optional=[])
    await give(gql, member, "research")
    clock.advance(days=30)
    await run_jobs(rt)
    assert await _upcoming(gql, member) == []  # in force: nothing upcoming any more
    answer = await _object(gql, member, pid)
    assert answer == {"partnerId": pid, "partner": "LabCo", "fields": [],
                      "legalBasis": "CONSENT", "effectiveAt": "2026-01-31T00:00:00+00:00",
                      "objected": True}
    await run_jobs(rt)
    pushed = events(tmp_path, "LabCo")
    assert [(e["type"], e["fields"]) for e in pushed] == [
        ("member.shared", ["dateOfBirth", "fullName"]),
        ("member.revoked", ["dateOfBirth", "fullName"])]


async def test_a_contract_partner_keeps_what_the_service_needs_and_the_member_is_told(
        gql, admin, member, rt, clock, tmp_path):
    pid = await announce(gql, admin, "ShipFast", directory=tmp_path,
                         fields=["FULL_NAME", "ADDRESS"], optional=["PHONE"])
    await give(gql, member, f"partner:{pid}")
    await purchase(gql, admin, member.id)
    assert await _upcoming(gql, member) == [{
        "partnerId": pid, "partner": "ShipFast", "fields": ["FULL_NAME", "PHONE", "ADDRESS"],
        "legalBasis": "CONTRACT", "effectiveAt": "2026-01-31T00:00:00+00:00",
        "objected": False}]
    answer = await _object(gql, member, pid)
    assert answer == {"partnerId": pid, "partner": "ShipFast", "fields": ["FULL_NAME", "ADDRESS"],
                      "legalBasis": "CONTRACT", "effectiveAt": "2026-01-31T00:00:00+00:00",
                      "objected": True}
    [note] = await Notification.filter(member_id=member.id, kind="partner.objection")
    assert note.subject == "Your objection to ShipFast is recorded"
    assert "cannot provide without it" in note.body

    clock.advance(days=31)
    await run_jobs(rt)
    assert [(e["type"], e["fields"]) for e in events(tmp_path, "ShipFast")] == [
        ("member.shared", ["address", "fullName"])]  # no phone: that rested on consent


async def test_a_member_without_a_purchase_sees_what_a_contract_partner_would_get(
        gql, admin, member, tmp_path):
    pid = await announce(gql, admin, "ShipFast", directory=tmp_path,
                         fields=["FULL_NAME", "ADDRESS"], optional=["PHONE"])
    assert await _upcoming(gql, member) == [{
        "partnerId": pid, "partner": "ShipFast", "fields": ["FULL_NAME", "ADDRESS"],
        "legalBasis": "CONTRACT", "effectiveAt": "2026-01-31T00:00:00+00:00",
        "objected": False}]


async def test_unknown_or_retired_partners_are_not_found(gql, admin, member, tmp_path):
    for bad in (str(uuid.uuid4()), "not-an-id"):
        body = await gql(OBJECT, {"p": bad}, token=member.token)
        assert error_code(body) == "NOT_FOUND", body
    pid = await announce(gql, admin, "OldCo", directory=tmp_path)
    body = await gql(RETIRE, {"id": pid}, token=admin.token)
    assert "errors" not in body, body
    body = await gql(OBJECT, {"p": pid}, token=member.token)
    assert error_code(body) == "NOT_FOUND", body
    assert await AuditEntry.filter(action="partner.objection").count() == 0


async def test_the_30_day_notice_links_to_the_upcoming_view(gql, admin, rt, tmp_path):
    rt.settings = replace(rt.settings, public_url="https://clinic.example")
    await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                   directory=tmp_path, fields=["FULL_NAME"], optional=[])
    [row] = await Announcement.all()
    assert row.body.endswith(
        "What it would receive about you, and how to object before then: "
        "https://clinic.example/account/#upcoming")
