"""The partner registry over HTTP: 30-day announcements, narrowing and retiring at once,
adapter limits, sealed configs, member notices and admin-only operations."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from api.models.partner import Partner
from api.models.rights import Notification
from api.platform.jobs import run_all
from api.service.composition import JOBS
from tests.conftest import error_code, register_member
from tests.helpers_partners import (
    ANNOUNCE,
    CHANGE,
    RETIRE,
    announce,
    assert_forbidden,
    install_narrow_adapter,
    long_sessions,  # noqa: F401 - autouse fixture
    partner_token,
)

PUBLIC = """{ outsourcingPartners { id name kind purpose status fields optionalFields
  upcoming { kind announcedAt effectiveAt fields optionalFields partner { name } } } }"""
ADMIN_LIST = "{ partners { id name adapter status fields optionalFields upcoming { kind } } }"


def _input(**over):
    base = {"name": "ShipFast", "kind": "LOGISTICS", "purpose": "order_fulfillment",
            "adapter": "jsonl", "config": {"directory": "shipfast"},
            "fields": ["FULL_NAME", "ADDRESS"], "optionalFields": ["PHONE"]}
    return {**base, **over}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_announce_takes_effect_thirty_days_later(gql, admin, clock, tmp_path):
    body = await gql(ANNOUNCE, {"input": _input(config={"directory": "shipfast"})},
                     token=admin.token)
    change = body["data"]["announcePartner"]
    assert change["kind"] == "ADDED"
    assert _at(change["effectiveAt"]) - _at(change["announcedAt"]) == timedelta(days=30)
    assert change["partner"]["status"] == "ANNOUNCED"

    public = (await gql(PUBLIC))["data"]["outsourcingPartners"]
    assert [(p["name"], p["status"]) for p in public] == [("ShipFast", "ANNOUNCED")]
    assert [u["kind"] for u in public[0]["upcoming"]] == ["ADDED"]
    assert public[0]["upcoming"][0]["partner"]["name"] == "ShipFast"

    clock.advance(days=30, seconds=-1)
    assert (await gql(PUBLIC))["data"]["outsourcingPartners"][0]["status"] == "ANNOUNCED"
    clock.advance(seconds=1)
    now = (await gql(PUBLIC))["data"]["outsourcingPartners"][0]
    assert now["status"] == "ACTIVE" and now["upcoming"] == []
    assert now["fields"] == ["FULL_NAME", "ADDRESS"] and now["optionalFields"] == ["PHONE"]


async def test_config_is_sealed_and_never_returned(gql, admin, tmp_path):
    secret = "whsec_" + base64.b64encode(b"never show this secret value!!!!").decode()
    await announce(gql, admin, "Hooks", adapter="webhook",
                   config={"url": "http://127.0.0.1:9/hook", "secret": secret})
    listed = await gql(ADMIN_LIST, token=admin.token)
    assert secret not in str(listed)
    row = await Partner.get(name="Hooks")
    assert secret.encode() not in bytes(row.config_ct)
    assert b"127.0.0.1" not in bytes(row.config_ct)


async def test_announce_refuses_bad_input(gql, admin):
    cases = [
        _input(adapter="no-such-adapter"),
        _input(config={}),  # jsonl needs a directory
        _input(config={"directory": "../outside"}),  # and one inside its root
        _input(purpose="no_such_purpose"),
        _input(purpose="membership", fields=["EMAIL"], optionalFields=[]) | {"purpose": "partner:x"},
        _input(fields=["PHONE"], optionalFields=["PHONE"]),
        _input(fields=[], optionalFields=[]),
        _input(name=""),
        _input(name="x" * 200),
    ]
    for case in cases:
        body = await gql(ANNOUNCE, {"input": case}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", (case, body)
    assert (await gql(ADMIN_LIST, token=admin.token))["data"]["partners"] == []


async def test_duplicate_name_is_a_conflict(gql, admin, tmp_path):
    await announce(gql, admin, "ShipFast", directory=tmp_path)
    body = await gql(ANNOUNCE, {"input": _input(config={"directory": "shipfast"})},
                     token=admin.token)
    assert error_code(body) == "CONFLICT"


async def test_registry_never_grants_more_than_the_adapter_takes(gql, admin, rt):
    install_narrow_adapter(rt)
    body = await gql(ANNOUNCE, {"input": _input(adapter="narrow", config={},
                                                fields=["FULL_NAME", "ADDRESS"],
                                                optionalFields=[])}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT" and "ADDRESS" in body["errors"][0]["message"]
    pid = await announce(gql, admin, "Narrow", adapter="narrow", config={},
                         fields=["FULL_NAME"], optional=["EMAIL"])
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME", "PHONE"], "o": []},
                     token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"


async def test_widening_waits_thirty_days_narrowing_is_immediate(gql, admin, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"], optional=[])
    clock.advance(days=30)
    clock.advance(days=5)
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME", "ADDRESS"], "o": ["PHONE"]},
                     token=admin.token)
    change = body["data"]["changePartnerFields"]
    assert change["kind"] == "FIELDS_WIDENED"
    assert _at(change["effectiveAt"]) - _at(change["announcedAt"]) == timedelta(days=30)
    assert change["partner"]["fields"] == ["FULL_NAME"]  # the old grant holds until then
    clock.advance(days=29)
    public = (await gql(PUBLIC))["data"]["outsourcingPartners"][0]
    assert public["fields"] == ["FULL_NAME"]
    assert [u["kind"] for u in public["upcoming"]] == ["FIELDS_WIDENED"]
    clock.advance(days=1)
    public = (await gql(PUBLIC))["data"]["outsourcingPartners"][0]
    assert public["fields"] == ["FULL_NAME", "ADDRESS"] and public["optionalFields"] == ["PHONE"]

    body = await gql(CHANGE, {"id": pid, "f": ["ADDRESS"], "o": []}, token=admin.token)
    change = body["data"]["changePartnerFields"]
    assert change["kind"] == "FIELDS_NARROWED"
    assert change["effectiveAt"] == change["announcedAt"]
    assert change["partner"]["fields"] == ["ADDRESS"]
    assert change["partner"]["optionalFields"] == []


async def test_narrowing_trims_a_pending_widening(gql, admin, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=[])
    clock.advance(days=31)
    await gql(CHANGE, {"id": pid, "f": ["FULL_NAME", "ADDRESS", "EMAIL"], "o": []},
              token=admin.token)
    clock.advance(days=1)
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME"], "o": []}, token=admin.token)
    assert body["data"]["changePartnerFields"]["kind"] == "FIELDS_NARROWED"
    clock.advance(days=40)  # the widening's date has passed: it may not hand back ADDRESS
    public = (await gql(PUBLIC))["data"]["outsourcingPartners"][0]
    assert public["fields"] == ["FULL_NAME"]


async def test_narrowing_an_announced_partner_trims_its_announcement(gql, admin, clock,
                                                                     tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=["PHONE"])
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME"], "o": []}, token=admin.token)
    assert body["data"]["changePartnerFields"]["partner"]["status"] == "ANNOUNCED"
    clock.advance(days=30)
    public = (await gql(PUBLIC))["data"]["outsourcingPartners"][0]
    assert (public["status"], public["fields"], public["optionalFields"]) == (
        "ACTIVE", ["FULL_NAME"], [])


async def test_retire_is_immediate_and_final(gql, admin, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path)
    clock.advance(days=31)
    body = await gql(RETIRE, {"id": pid}, token=admin.token)
    retired = body["data"]["retirePartner"]
    assert retired["kind"] == "RETIRED" and retired["partner"]["status"] == "RETIRED"
    assert (await gql(PUBLIC))["data"]["outsourcingPartners"][0]["status"] == "RETIRED"
    assert error_code(await gql(RETIRE, {"id": pid}, token=admin.token)) == "CONFLICT"
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME"], "o": []}, token=admin.token)
    assert error_code(body) == "CONFLICT"


async def test_unknown_partner_is_not_found(gql, admin):
    for pid in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert error_code(await gql(RETIRE, {"id": pid}, token=admin.token)) == "NOT_FOUND"
        body = await gql(CHANGE, {"id": pid, "f": ["EMAIL"], "o": []}, token=admin.token)
        assert error_code(body) == "NOT_FOUND"


async def test_members_are_notified_and_a_partner_purpose_is_registered(rt, gql, admin, member,
                                                                        other_member, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path)
    assert (await run_all(rt, JOBS, ["announcements"]))["announcements"] == {
        "announcements": 1, "notified": 2}
    notes = await Notification.filter(kind="partner.changed").values_list("member_id", flat=True)
    assert sorted(str(n) for n in notes) == sorted([member.id, other_member.id])
    purposes = (await gql("{ purposes { name legalBasis } }"))["data"]["purposes"]
    assert {"name": f"partner:{pid}", "legalBasis": "CONSENT"} in purposes
    trail = await gql("{ auditTrail(first: 100) { edges { node { action subject } } } }",
                      token=admin.token)
    actions = [e["node"]["action"] for e in trail["data"]["auditTrail"]["edges"]]
    assert "partner.announce" in actions


async def test_admin_operations_refuse_member_and_partner_tokens(gql, client, admin, clock,
                                                                 tmp_path):
    pid = await announce(gql, admin, directory=tmp_path)
    member = await register_member(gql, "mallory")
    partner = await partner_token(client, gql, admin, pid)
    ops = [
        (ANNOUNCE, {"input": _input(name="Other", config={"directory": "shipfast"})}),
        (CHANGE, {"id": pid, "f": ["FULL_NAME"], "o": []}),
        (RETIRE, {"id": pid}),
        ("mutation($id: ID!) { issuePartnerCredentials(partnerId: $id, scopes: "
         "[\"members:read\"]) { clientId } }", {"id": pid}),
        ("mutation { revokePartnerCredentials(clientId: \"x\") }", {}),
        (ADMIN_LIST, {}),
    ]
    for query, variables in ops:
        assert_forbidden(await gql(query, variables, token=member.token))
        assert_forbidden(await gql(query, variables, token=partner))
        assert error_code(await gql(query, variables)) == "UNAUTHENTICATED"


async def test_effective_at_may_be_later_never_sooner(gql, admin, clock, tmp_path):
    cfg = {"directory": "shipfast"}
    soon = (clock.now() + timedelta(days=29, hours=23)).isoformat()
    body = await gql(ANNOUNCE, {"input": _input(config=cfg, effectiveAt=soon)}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT" and "30 days" in body["errors"][0]["message"]
    naive = (clock.now() + timedelta(days=40)).replace(tzinfo=None).isoformat()
    body = await gql(ANNOUNCE, {"input": _input(config=cfg, effectiveAt=naive)}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"
    later = clock.now() + timedelta(days=45)
    body = await gql(ANNOUNCE, {"input": _input(config=cfg, effectiveAt=later.isoformat())},
                     token=admin.token)
    change = body["data"]["announcePartner"]
    assert _at(change["effectiveAt"]) == later
    pid = change["partner"]["id"]
    clock.advance(days=44)
    assert (await gql(PUBLIC))["data"]["outsourcingPartners"][0]["status"] == "ANNOUNCED"
    clock.advance(days=1)
    assert (await gql(PUBLIC))["data"]["outsourcingPartners"][0]["status"] == "ACTIVE"

    with_date = """mutation($id: ID!, $f: [PersonalField!]!, $o: [PersonalField!]!, $at: DateTime) {
      changePartnerFields(partnerId: $id, fields: $f, optionalFields: $o, effectiveAt: $at) {
        kind effectiveAt } }"""
    early = (clock.now() + timedelta(days=10)).isoformat()
    body = await gql(with_date, {"id": pid, "f": ["FULL_NAME", "ADDRESS", "EMAIL"], "o": [],
                                 "at": early}, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"
    body = await gql(with_date, {"id": pid, "f": ["FULL_NAME"], "o": [], "at": early},
                     token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"  # a narrowing takes effect at once
    late = clock.now() + timedelta(days=60)
    body = await gql(with_date, {"id": pid, "f": ["FULL_NAME", "ADDRESS", "EMAIL"], "o": [],
                                 "at": late.isoformat()}, token=admin.token)
    assert body["data"]["changePartnerFields"]["kind"] == "FIELDS_WIDENED"
    assert _at(body["data"]["changePartnerFields"]["effectiveAt"]) == late
