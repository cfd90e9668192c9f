"""``processingRecord`` (partner loop, item 7): the GDPR Art. 30 record derived from what runs,
and an audit entry for every change to it (a partner, a policy). Shape: docs/processing-record.md."""

from __future__ import annotations

from api.models.audit import AuditEntry
from api.platform.jobs import run_all
from api.service.composition import JOBS
from tests.conftest import error_code
from tests.helpers_partners import announce, long_sessions  # noqa: F401 - autouse fixture

RECORD = "{ processingRecord }"
POLICY = """mutation { announcePolicy(version: "2.0", text: "Version two",
  effectiveAt: "2026-03-01T00:00:00+00:00") { version } }"""


async def _record(gql, admin) -> dict:
    body = await gql(RECORD, token=admin.token)
    assert "errors" not in body, body
    return body["data"]["processingRecord"]


async def _changes() -> list[tuple[str, list[str]]]:
    rows = await AuditEntry.filter(action="processing_record.changed").order_by("seq")
    return [(r.actor.split(":")[0], r.detail["changed"]) for r in rows]


async def test_the_record_is_derived_from_what_runs(gql, admin, member, tmp_path):
    record = await _record(gql, admin)
    assert record["format"] == "consentry.processing-record/1"
    assert record["controller"]["name"] == "Consentry Clinic"
    assert record["policy"] == {"version": "1.0", "effectiveAt": "1970-01-01T00:00:00+00:00",
                                "announced": []}
    assert record["retention"] == {"taxVaultYears": 5, "taxVaultFields": ["fullName", "address"],
                                   "dormancyMonths": 12, "dormantRetentionDays": 1825,
                                   "partnerDeletionDays": 30}
    assert record["recipients"] == []
    bases = {p["name"]: p["legalBasis"] for p in record["purposes"]}
    assert bases == {"membership": "CONTRACT", "order_fulfillment": "CONTRACT",
                     "marketing": "CONSENT", "personalization": "CONSENT",
                     "health_data": "CONSENT", "research": "CONSENT"}
    assert any(m.startswith("Envelope encryption of every personal field: AES-256-GCM")
               for m in record["securityMeasures"])

    pid = await announce(gql, admin, "ShipFast", directory=tmp_path,
                         fields=["FULL_NAME", "ADDRESS"], optional=["PHONE"])
    record = await _record(gql, admin)
    assert record["recipients"] == [{
        "id": pid, "name": "ShipFast", "kind": "LOGISTICS", "status": "ANNOUNCED",
        "purpose": "order_fulfillment", "legalBasis": "CONTRACT",
        "fields": ["fullName", "address"], "optionalFields": ["phone"],
        "optionalFieldsBasis": "CONSENT", "suspended": False,
        "upcoming": [{"kind": "ADDED", "effectiveAt": "2026-01-31T00:00:00+00:00",
                      "fields": ["fullName", "address"], "optionalFields": ["phone"]}]}]
    [own] = [p for p in record["purposes"] if p["name"] == f"partner:{pid}"]
    assert (own["legalBasis"], own["partnerId"], own["dataCategories"]) == (
        "CONSENT", pid, ["phone"])

    assert error_code(await gql(RECORD, token=member.token)) == "FORBIDDEN"


async def test_every_change_is_an_audit_entry(gql, admin, rt, tmp_path):
    await _record(gql, admin)
    await _record(gql, admin)  # no change: no second entry
    assert await _changes() == [("admin", ["controller", "dataSubjects", "format", "policy",
                                           "purposes", "recipients", "retention",
                                           "securityMeasures"])]
    await announce(gql, admin, "ShipFast", directory=tmp_path)
    assert (await _changes())[1:] == [("admin", ["purposes", "recipients"])]

    body = await gql(POLICY, token=admin.token)
    assert "errors" not in body, body
    await run_all(rt, JOBS, only=["processing_record"])
    await run_all(rt, JOBS, only=["processing_record"])
    assert (await _changes())[2:] == [("job", ["policy"])]
    record = await _record(gql, admin)
    assert record["policy"]["announced"] == [
        {"version": "2.0", "effectiveAt": "2026-03-01T00:00:00+00:00"}]
    assert len(await _changes()) == 3
