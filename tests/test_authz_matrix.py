"""The authorization matrix: every operation of the contract (and every extra one served) run as
every kind of caller, over HTTP, with the expected outcome per cell.

Callers: anonymous, a member, another member, a partner token with ``members:read``, a partner
token with ``purchases:write``, and an admin signed in with TOTP. A cell is either ``OK`` (data,
no error) or the error code expected. The test fails when an operation of the contract (or of
the served schema) has no row, so a new operation cannot ship without its authorization story.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from graphql import build_schema as parse_sdl

from schema import build_schema
from tests.conftest import LOGIN, PASSWORD, error_code, register_member
from tests.helpers_partners import announce, partner_token, policy_version
from tests.test_contract import _contract_path

pytestmark = pytest.mark.both_graphql_paths  # every cell through the fast path and strawberry

OK = "OK"
U, F = "UNAUTHENTICATED", "FORBIDDEN"
ROLES = ("anonymous", "partner_read", "partner_purchases", "admin", "other", "member")


def public() -> dict[str, str]:
    return dict.fromkeys(ROLES, OK)


def member_only() -> dict[str, str]:
    return {"anonymous": U, "partner_read": F, "partner_purchases": F, "admin": F,
            "other": OK, "member": OK}


def admin_only() -> dict[str, str]:
    return {"anonymous": U, "partner_read": F, "partner_purchases": F, "admin": OK,
            "other": F, "member": F}


Vars = dict[str, Any] | Callable[["World", str], Awaitable[dict[str, Any]]]


@dataclass
class Row:
    query: str
    expect: dict[str, str]
    variables: Vars = field(default_factory=dict)


@dataclass
class World:
    gql: Any
    clock: Any
    tokens: dict[str, str | None]
    ids: dict[str, str]


async def _fresh_user(world: World, role: str) -> dict[str, Any]:
    uid = f"u{uuid.uuid4().hex[:10]}"
    return {"input": {"userId": uid, "email": f"{uid}@example.org", "fullName": "New Person",
                      "password": PASSWORD}}


async def _carol_refresh(world: World, role: str) -> dict[str, Any]:
    body = await world.gql(LOGIN, {"u": "carol", "p": PASSWORD})
    return {"t": body["data"]["login"]["refreshToken"]}


async def _policy_vars(world: World, role: str) -> dict[str, Any]:
    return {"v": await policy_version(world.gql)}


async def _new_policy(world: World, role: str) -> dict[str, Any]:
    at = world.clock.now() + timedelta(days=31)
    return {"v": f"v-{uuid.uuid4().hex[:8]}", "at": at.isoformat()}


async def _new_partner(world: World, role: str) -> dict[str, Any]:
    return {"input": {"name": f"Vendor {uuid.uuid4().hex[:6]}", "kind": "IT_VENDOR",
                      "purpose": "order_fulfillment", "adapter": "jsonl",
                      "config": {"directory": world.ids["outdir"]},
                      "fields": ["FULL_NAME"], "optionalFields": []}}


async def _device_with_choice(world: World, role: str) -> dict[str, Any]:
    device = f"device-{uuid.uuid4().hex[:8]}"
    body = await world.gql("mutation($d: String!) { setCookiePreferences(deviceId: $d, "
                           "analytics: true, personalization: false, marketing: false) { at } }",
                           {"d": device})
    assert "errors" not in body, body
    return {"d": device}


def _ids(*names: str) -> Callable[[World, str], Awaitable[dict[str, Any]]]:
    async def make(world: World, role: str) -> dict[str, Any]:
        values = {"alice": world.ids["alice"], "P": world.ids["P"], "Q": world.ids["Q"],
                  "DR": world.ids["DR"], "ref": f"order-{uuid.uuid4().hex[:8]}",
                  "device": f"device-{uuid.uuid4().hex[:8]}"}
        return {n: values[n] for n in names}
    return make


async def _article5_ids(rt: Any, member_id: str) -> dict[str, str]:
    """Legal disclosures asked by a second admin: one to decide (four eyes: the matrix's admin
    is not the requester), one already approved to release."""
    from api.members import auth
    from api.models.member import Admin
    from api.rights import legal_disclosure as legal

    await auth.create_admin(rt, user_id="matrix-requester", email="mr@clinic.example",
                            password=PASSWORD)
    requester = str((await Admin.get(user_id="matrix-requester")).id)
    ask = dict(member_id=member_id, authority="Court", reference="R-1",
               legal_basis="LEGAL_OBLIGATION", justification="order", notify_member=True)
    decide = await legal.request(rt, requester, fields=["EMAIL"], **ask)
    release = await legal.request(rt, requester, fields=["EMAIL"], **ask)
    approver = str((await Admin.get(user_id="root-admin")).id)
    await legal.decide(rt, approver, release.id, True)
    return {"LD": decide.id, "LR": release.id}


async def _own_address(world: World, role: str) -> dict[str, Any]:
    return {"e": f"{role}@example.org"}  # one address per caller: the per-address limit holds


async def _signed_in_again(world: World, role: str) -> dict[str, Any]:
    """signOutEverywhere ended the members' sessions: later rows sign in afresh."""
    if role in ("member", "other"):
        user_id = "alice" if role == "member" else "bob"
        body = await world.gql(LOGIN, {"u": user_id, "p": PASSWORD})
        world.tokens[role] = body["data"]["login"]["accessToken"]
    return {}


def _id(name: str) -> Callable[[World, str], Awaitable[dict[str, Any]]]:
    async def make(world: World, role: str) -> dict[str, Any]:
        return {name: world.ids[name]}
    return make


PURCHASE = {**admin_only(), "partner_purchases": OK}
SHARED = {**admin_only(), "admin": F, "partner_read": OK}

# Ordered: destructive rows (retire, withdraw) run last.
MATRIX: dict[str, Row] = {
    # --- public queries
    "policy": Row("{ policy { version } }", public()),
    "purposes": Row("{ purposes { name } }", public()),
    "outsourcingPartners": Row("{ outsourcingPartners { id } }", public()),
    "cookiePreferences": Row("query($d: String!) { cookiePreferences(deviceId: $d) { analytics } }",
                             public(), _device_with_choice),
    # --- member queries
    "me": Row("{ me { id } }", {**member_only()}),
    # --- admin queries
    "members": Row("{ members { edges { node { id } } } }", admin_only()),
    "member": Row("query($alice: ID!) { member(id: $alice) { id } }", admin_only(),
                  _ids("alice")),
    "partners": Row("{ partners { id } }", admin_only()),
    "dataRequests": Row("{ dataRequests { id } }", admin_only()),
    "auditTrail": Row("{ auditTrail { edges { cursor } } }", admin_only()),
    "deadLetters": Row("{ deadLetters { id } }", admin_only()),
    "outboxCounts": Row("{ outboxCounts { dead } }", admin_only()),
    "legalDisclosures": Row("{ legalDisclosures { id } }", admin_only()),
    "partnerAdapters": Row("{ partnerAdapters { name accepts } }", admin_only()),
    "memberLookup": Row('{ memberLookup(userId: "carol") { id } }', admin_only()),
    # --- partner query
    "sharedMembers": Row("{ sharedMembers { edges { cursor } } }", SHARED),
    "partnerEvents": Row("{ partnerEvents { edges { cursor } } }", SHARED),
    "deletionDuties": Row("{ deletionDuties(overdue: true) { eventId } }", admin_only()),
    "processingRecord": Row("{ processingRecord }", admin_only()),
    # only a partner token with events:ack (none of the matrix's callers) may confirm
    "confirmDeletion": Row('mutation { confirmDeletion(eventIds: '
                           '["7d0c6f50-0000-4000-8000-000000000000"]) }',
                           {**admin_only(), "admin": F}),
    # --- sign-in (public by nature)
    "register": Row("mutation($input: RegisterInput!) { register(input: $input) { role } }",
                    public(), _fresh_user),
    "login": Row(LOGIN, public(), {"u": "carol", "p": PASSWORD}),
    "refresh": Row("mutation($t: String!) { refresh(refreshToken: $t) { role } }", public(),
                   _carol_refresh),
    "logout": Row('mutation { logout(refreshToken: "not-a-token") }', public()),
    # --- accounts: mailed tokens need no caller (a bogus one is bad input for everyone)
    "verifyEmail": Row('mutation { verifyEmail(token: "not-a-token") }',
                       dict.fromkeys(ROLES, "BAD_USER_INPUT")),
    "requestPasswordReset": Row("mutation($e: String!) { requestPasswordReset(email: $e) }",
                                public(), _own_address),
    "resetPassword": Row('mutation { resetPassword(token: "not-a-token", '
                         'newPassword: "a long new passphrase 1") }',
                         dict.fromkeys(ROLES, "BAD_USER_INPUT")),
    "resendEmailVerification": Row("mutation { resendEmailVerification }", member_only()),
    "changePassword": Row('mutation { changePassword(currentPassword: "not the password", '
                          'newPassword: "a long new passphrase 1") }',
                          {**member_only(), "member": "BAD_USER_INPUT",
                           "other": "BAD_USER_INPUT"}),
    "revokeSession": Row('mutation { revokeSession(id: "7d0c6f50-0000-4000-8000-000000000000") }',
                         {**member_only(), "member": "NOT_FOUND", "other": "NOT_FOUND"}),
    # --- passkeys: registration needs a member token; sign-in none (a bogus answer: refused)
    "beginPasskeyRegistration": Row("mutation { beginPasskeyRegistration }", member_only()),
    "finishPasskeyRegistration": Row("mutation { finishPasskeyRegistration(credential: {}) { id } }",
                                     {**member_only(), "member": "BAD_USER_INPUT",
                                      "other": "BAD_USER_INPUT"}),
    "removePasskey": Row('mutation { removePasskey(id: "7d0c6f50-0000-4000-8000-000000000000") }',
                         {**member_only(), "member": "NOT_FOUND", "other": "NOT_FOUND"}),
    "beginPasskeyLogin": Row('mutation { beginPasskeyLogin(userId: "carol") }', public()),
    "finishPasskeyLogin": Row("mutation { finishPasskeyLogin(credential: {}) { role } }",
                              dict.fromkeys(ROLES, U)),
    "setCookiePreferences": Row(
        "mutation($device: String!) { setCookiePreferences(deviceId: $device, analytics: true, "
        "personalization: false, marketing: false) { necessary } }",
        # Cookie choices belong to a device or a member; staff and partner tokens are refused.
        {**public(), "admin": F, "partner_read": F, "partner_purchases": F}, _ids("device")),
    # --- member mutations
    "updateProfile": Row('mutation { updateProfile(input: {fullName: "Renamed Person"}) { id } }',
                         member_only()),
    "giveConsent": Row('mutation($v: String!) { giveConsent(purpose: "marketing", '
                       "policyVersion: $v) { state } }", member_only(), _policy_vars),
    "withdrawConsent": Row('mutation { withdrawConsent(purpose: "marketing") { state } }',
                           member_only()),
    "exportMyData": Row("mutation { exportMyData { format } }", member_only()),
    "reportInaccuracy": Row("mutation { reportInaccuracy(fields: [FULL_NAME]) { id } }",
                            member_only()),
    "requestErasure": Row("mutation { requestErasure { id } }", member_only()),
    # --- admin mutations
    "announcePartner": Row("mutation($input: PartnerInput!) { announcePartner(input: $input) "
                           "{ id } }", admin_only(), _new_partner),
    "changePartnerFields": Row("mutation($P: ID!) { changePartnerFields(partnerId: $P, "
                               "fields: [FULL_NAME], optionalFields: []) { id } }",
                               admin_only(), _ids("P")),
    "issuePartnerCredentials": Row('mutation($P: ID!) { issuePartnerCredentials(partnerId: $P, '
                                   'scopes: ["members:read"]) { clientId } }', admin_only(),
                                   _ids("P")),
    "revokePartnerCredentials": Row('mutation { revokePartnerCredentials(clientId: "nobody") }',
                                    {**admin_only(), "admin": "NOT_FOUND|OK"}),
    "objectToPartner": Row("mutation($P: ID!) { objectToPartner(partnerId: $P) { objected } }",
                           member_only(), _ids("P")),
    # PASSED: a FAILED audit would suspend ShipFast for the partner rows
    "recordPartnerAudit": Row("mutation($P: ID!) { recordPartnerAudit(partnerId: $P, "
                              'at: "2026-01-01T00:00:00Z", outcome: PASSED, '
                              'nextDueAt: "2027-01-01T00:00:00Z") { id } }',
                              admin_only(), _ids("P")),
    "recordPurchase": Row('mutation($alice: ID!, $ref: String!) { recordPurchase(memberId: '
                          '$alice, amount: "10.00", currency: "EUR", reference: $ref) { id } }',
                          PURCHASE, _ids("alice", "ref")),
    "announcePolicy": Row("mutation($v: String!, $at: DateTime!) { announcePolicy(version: $v, "
                          'text: "New terms", effectiveAt: $at) { version } }', admin_only(),
                          _new_policy),
    "resolveDataRequest": Row("mutation($DR: ID!) { resolveDataRequest(id: $DR, "
                              "status: REJECTED, note: \"dup\") { status } }", admin_only(),
                              _ids("DR")),
    "requestLegalDisclosure": Row(
        'mutation($alice: ID!) { requestLegalDisclosure(memberId: $alice, authority: "Court", '
        'reference: "R-2", legalBasis: LEGAL_OBLIGATION, fields: [EMAIL], justification: '
        '"order", notifyMember: true) { id } }', admin_only(), _ids("alice")),
    "decideLegalDisclosure": Row("mutation($LD: ID!) { decideLegalDisclosure(id: $LD, "
                                 "approve: true) { status } }", admin_only(), _id("LD")),
    "releaseLegalDisclosure": Row("mutation($LR: ID!) { releaseLegalDisclosure(id: $LR) }",
                                  admin_only(), _id("LR")),
    "createResearchDataset": Row("mutation { createResearchDataset(k: 5, attributes: "
                                 "[AGE_BAND, REGION]) { rows } }", admin_only()),
    "retryDeadLetters": Row('mutation { retryDeadLetters(ids: ["7d0c6f50-0000-4000-8000-000000000000"]) }',
                            {**admin_only(), "admin": "OK|NOT_FOUND"}),
    "retirePartner": Row("mutation($Q: ID!) { retirePartner(partnerId: $Q) { kind } }",
                         admin_only(), _ids("Q")),
    "signOutEverywhere": Row("mutation { signOutEverywhere }", member_only()),
    "withdrawMembership": Row(f'mutation {{ withdrawMembership(password: "{PASSWORD}") '
                              "{ withdrawnAt } }", member_only(), _signed_in_again),
}


def _operations(sdl_schema) -> set[str]:
    return set(sdl_schema.query_type.fields) | set(sdl_schema.mutation_type.fields)


def test_every_served_operation_has_a_row():
    served = _operations(build_schema()._schema)
    assert served - set(MATRIX) == set(), "served operations missing from the matrix"
    assert set(MATRIX) - served == set(), "matrix rows for operations no longer served"


def test_every_contract_operation_has_a_row():
    contract = _operations(parse_sdl(_contract_path().read_text()))  # skips without ../shared
    assert contract - set(MATRIX) == set(), "contract operations missing from the matrix"


async def _world(rt, gql, client, clock, member, other_member, admin, tmp_path) -> World:
    carol = await register_member(gql, "carol")
    body = await gql("mutation { reportInaccuracy(fields: [EMAIL]) { id } }", token=carol.token)
    assert "errors" not in body, body
    outdir = tmp_path / "out"
    outdir.mkdir()
    p = await announce(gql, admin, "ShipFast", directory=outdir)
    q = await announce(gql, admin, "OldCo", directory=outdir, purpose="order_fulfillment")
    tokens = {
        "anonymous": None, "member": member.token, "other": other_member.token,
        "admin": admin.token,
        "partner_read": await partner_token(client, gql, admin, p, ("members:read",)),
        "partner_purchases": await partner_token(client, gql, admin, p, ("purchases:write",)),
    }
    ids = {"alice": member.id, "bob": other_member.id, "P": p, "Q": q,
           "DR": body["data"]["reportInaccuracy"]["id"], "outdir": str(outdir),
           **await _article5_ids(rt, member.id)}
    return World(gql, clock, tokens, ids)


async def test_authorization_matrix(rt, gql, client, clock, member, other_member, admin,
                                    tmp_path):
    world = await _world(rt, gql, client, clock, member, other_member, admin, tmp_path)
    failures = []
    for name, row in MATRIX.items():
        for role in ROLES:
            variables = row.variables
            if callable(variables):
                variables = await variables(world, role)
            body = await gql(row.query, variables, token=world.tokens[role])
            expected = row.expect[role]
            got = error_code(body) or OK
            if got == "INTERNAL" or got not in expected.split("|"):
                failures.append(f"{name} as {role}: expected {expected}, got {got} "
                                f"({(body.get('errors') or [{}])[0].get('message')})")
                continue
            data = body.get("data") or {}
            if got == OK:
                assert data.get(name) is not None, (name, role, body)
            else:
                assert data.get(name) is None, (name, role, body)  # nothing leaks with an error
            if name == "me" and got == OK:  # a member only ever sees itself
                own = world.ids["alice"] if role == "member" else world.ids["bob"]
                assert data["me"]["id"] == own
    assert failures == [], "\n".join(failures)


async def test_a_member_cannot_reach_another_member_by_id(gql, member, other_member):
    """No operation takes a member id from a member token: the id-taking ones are admin-only."""
    for query in (f'{{ member(id: "{other_member.id}") {{ email }} }}',
                  f'mutation {{ recordPurchase(memberId: "{other_member.id}", amount: "1.00", '
                  'currency: "EUR", reference: "x") { id } }'):
        body = await gql(query, token=member.token)
        assert error_code(body) == "FORBIDDEN"
        assert "bob" not in str(body)
