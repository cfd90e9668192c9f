"""Partner audits (partner loop, item 6; policy 6.2): ``recordPartnerAudit``, ``Partner.audits``,
``nextAuditDueAt``, ``suspended``. A FAILED audit stops pull and push at once; the events wait
in the outbox and, after a later PASSED audit, reach the partner erasures and revocations first,
re-checked against the grants of that moment. Over HTTP, real jobs, the real ``jsonl`` adapter."""

from __future__ import annotations

from datetime import UTC, datetime

from api.models.enums import OutboxStatus
from api.models.partner import OutboxEvent
from api.models.rights import Notification
from api.platform.jobs import run_all
from api.service.composition import JOBS
from tests.conftest import PASSWORD, error_code
from tests.helpers_partners import (
    announce,
    events,
    give,
    long_sessions,  # noqa: F401 - autouse fixture
    partner_token,
    purchase,
    run_jobs,
    withdraw,
)

AUDIT = """mutation($p: ID!, $at: DateTime!, $o: PartnerAuditOutcome!, $n: String, $d: DateTime!) {
  recordPartnerAudit(partnerId: $p, at: $at, outcome: $o, notes: $n, nextDueAt: $d) {
    id at outcome notes nextDueAt auditor } }"""
PARTNERS = "{ partners { name suspended nextAuditDueAt audits { outcome at nextDueAt notes } } }"
PROFILE = "mutation($i: ProfileInput!) { updateProfile(input: $i) { status } }"
SHARED = "{ sharedMembers { edges { node { ref } } } }"
FEED = "{ partnerEvents { edges { node { type } } } }"


async def _audit(gql, admin, pid: str, outcome: str, at: str, due: str,
                 notes: str | None = None) -> dict:
    body = await gql(AUDIT, {"p": pid, "at": at, "o": outcome, "n": notes, "d": due},
                     token=admin.token)
    assert "errors" not in body, body
    return body["data"]["recordPartnerAudit"]


async def test_a_failed_audit_stops_pull_and_push_until_a_passed_one(
        gql, client, admin, member, other_member, rt, clock, tmp_path):
    pid = await announce(gql, admin, "ShipFast", directory=tmp_path,
                         fields=["FULL_NAME", "ADDRESS"], optional=["PHONE"])
    await give(gql, member, f"partner:{pid}")
    await purchase(gql, admin, member.id)
    await purchase(gql, admin, other_member.id, "order 2")
    clock.advance(days=30)
    await run_jobs(rt)
    assert [e["type"] for e in events(tmp_path, "ShipFast")] == ["member.shared"] * 2
    token = await partner_token(client, gql, admin, pid, ("members:read",))
    assert error_code(await gql(SHARED, token=token)) is None

    failed = await _audit(gql, admin, pid, "FAILED", "2026-01-30T09:00:00Z",
                          "2026-03-01T00:00:00Z", "no encryption at rest")
    assert (failed["outcome"], failed["notes"], failed["auditor"]) == (
        "FAILED", "no encryption at rest", "root-admin")
    assert error_code(await gql(SHARED, token=token)) == "FORBIDDEN"
    assert error_code(await gql(FEED, token=token)) == "FORBIDDEN"

    # While suspended: an update, a consent withdrawal (revocation), a destruction (erasure).
    clock.advance(seconds=1)
    body = await gql(PROFILE, {"i": {"address": "2 Harbour Lane, Hull", "phone": "+44 20 7946 0999"}},
                     token=member.token)
    assert "errors" not in body, body
    clock.advance(seconds=1)
    await withdraw(gql, member, f"partner:{pid}")
    clock.advance(seconds=1)
    body = await gql("mutation($p: String!) { withdrawMembership(password: $p) { destroyed } }",
                     {"p": PASSWORD}, token=other_member.token)
    assert "errors" not in body, body
    clock.advance(minutes=5)
    await run_jobs(rt)
    assert len(events(tmp_path, "ShipFast")) == 2  # nothing pushed
    waiting = await OutboxEvent.filter(partner_id=pid, status=OutboxStatus.PENDING).values_list(
        "type", "attempts")
    assert sorted(waiting) == [("member.erasure", 0), ("member.revoked", 0),
                               ("member.updated", 0)]
    body = await gql(PARTNERS, token=admin.token)
    assert body["data"]["partners"] == [{
        "name": "ShipFast", "suspended": True, "nextAuditDueAt": "2026-03-01T00:00:00+00:00",
        "audits": [{"outcome": "FAILED", "at": "2026-01-30T09:00:00+00:00",
                    "nextDueAt": "2026-03-01T00:00:00+00:00", "notes": "no encryption at rest"}]}]

    await _audit(gql, admin, pid, "PASSED", "2026-01-31T10:00:00Z", "2027-01-31T00:00:00Z")
    await run_jobs(rt)
    after = events(tmp_path, "ShipFast")[2:]
    # deletions first, then the rest
    assert sorted(e["type"] for e in after[:2]) == ["member.erasure", "member.revoked"]
    assert after[2]["type"] == "member.updated"
    assert [e["fields"] for e in after[:2] if e["type"] == "member.revoked"] == [["phone"]]
    # re-checked now: the phone rested on the consent withdrawn while the partner was suspended
    assert after[2]["fields"] == ["address"]
    assert after[2]["member"]["address"] == "2 Harbour Lane, Hull"
    assert "phone" not in after[2]["member"]
    token = await partner_token(client, gql, admin, pid, ("members:read",))
    assert error_code(await gql(SHARED, token=token)) is None
    body = await gql(PARTNERS, token=admin.token)
    partner = body["data"]["partners"][0]
    assert (partner["suspended"], partner["nextAuditDueAt"]) == (
        False, "2027-01-31T00:00:00+00:00")
    assert [a["outcome"] for a in partner["audits"]] == ["PASSED", "FAILED"]


async def test_bad_audits_are_refused(gql, admin, member, tmp_path):
    pid = await announce(gql, admin, "ShipFast", directory=tmp_path)
    body = await gql(AUDIT, {"p": pid, "at": "2026-02-01T00:00:00Z", "o": "PASSED", "n": None,
                             "d": "2026-01-31T23:59:59Z"}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT", body
    body = await gql(AUDIT, {"p": "7d0c6f50-0000-4000-8000-000000000000",
                             "at": "2026-02-01T00:00:00Z", "o": "FAILED", "n": None,
                             "d": "2026-03-01T00:00:00Z"}, token=admin.token)
    assert error_code(body) == "NOT_FOUND", body
    body = await gql(AUDIT, {"p": pid, "at": "2026-02-01T00:00:00Z", "o": "FAILED", "n": None,
                             "d": "2026-03-01T00:00:00Z"}, token=member.token)
    assert error_code(body) == "FORBIDDEN", body
    body = await gql(PARTNERS, token=admin.token)
    assert body["data"]["partners"][0]["audits"] == []
    # the admin-only fields on a type public callers reach
    body = await gql("{ outsourcingPartners { upcoming { partner { suspended } } } }")
    assert error_code(body) == "FORBIDDEN", body


async def test_an_audit_past_due_is_mailed_to_the_admins_once_per_due_date(
        gql, admin, rt, clock, tmp_path):
    pid = await announce(gql, admin, "ShipFast", directory=tmp_path)
    await _audit(gql, admin, pid, "PASSED", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")

    async def mailed() -> list[str]:
        await run_all(rt, JOBS, only=["partner_audits"])
        return [n.subject for n in await Notification.filter(kind="partner_audit.overdue")]

    clock.set(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    assert await mailed() == []
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    assert await mailed() == ["The audit of ShipFast is overdue"]
    clock.set(datetime(2026, 2, 9, tzinfo=UTC))
    assert await mailed() == ["The audit of ShipFast is overdue"]  # once per due date
    await _audit(gql, admin, pid, "FINDINGS", "2026-02-10T00:00:00Z", "2026-03-01T00:00:00Z")
    clock.set(datetime(2026, 3, 2, tzinfo=UTC))
    assert await mailed() == ["The audit of ShipFast is overdue"] * 2
