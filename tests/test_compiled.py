"""Compiled plans (schema/compiled.py) answer exactly as graphql-core and strawberry do.

Every registered document is sent by hash with its plan (``compiled``), then on graphql-core
(the fast path with plans off), then through strawberry's view, with no token, a bad token,
a member's and an admin's, valid and invalid variables: the answers are compared byte for byte
(plan and graphql-core, same serializer) and as JSON (the view). Requests that change state
are compared where the change leaves the answer comparable (values that are random by design,
such as tokens and receipts, masked). A document the compiler does not plan runs uncompiled.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pyotp
import pytest

from api.consent import policy
from api.platform.runtime import Runtime
from api.service.asgi import create_app
from schema.compiled import Unsupported, compile_operation
from schema.fastpath import FastGraphQL
from schema.trusted import document_hash, load, operation_name
from tests.conftest import (
    GQL,
    LOGIN,
    PASSWORD,
    Account,
    create_admin,
    graphql_endpoint,
    register_member,
)
from tests.helpers_partners import announce

DOCUMENTS = {operation_name(text): digest for digest, text in load().items()}
TEXTS = {operation_name(text): text for text in load().values()}
RANDOM = frozenset({"accessToken", "refreshToken", "receipt", "beginPasskeyLogin",
                    "beginPasskeyRegistration"})
NEW_PASSWORD = "a brand new passphrase 77"
SENT: set[str] = set()  # the documents the comparison test sent (it checks it sent them all)


@pytest.fixture
async def app_client(rt: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, FastGraphQL]]:
    app = create_app(rt, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c, graphql_endpoint(app)


async def _send(client: httpx.AsyncClient, name: str, variables: Any,
                token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    SENT.add(name)
    payload: dict[str, Any] = {"extensions": {"persistedQuery": {
        "version": 1, "sha256Hash": DOCUMENTS[name]}}}
    if variables is not None:
        payload["variables"] = variables
    response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def _ad_hoc(client: httpx.AsyncClient, text: str, variables: Any,
                  token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    payload: dict[str, Any] = {"query": text}
    if variables is not None:
        payload["variables"] = variables
    response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def _three_ways(client: httpx.AsyncClient, fast: FastGraphQL, name: str, variables: Any,
                      token: str | None) -> dict[str, Any]:
    """A request that changes nothing: plan, graphql-core and strawberry's view agree; the
    same text sent as an ad-hoc document runs a plan compiled when first seen: the same."""
    fast.compiled, fast.enabled = True, True
    planned = await _send(client, name, variables, token)
    ad_hoc = await _ad_hoc(client, TEXTS[name], variables, token)
    assert fast._documents[TEXTS[name]] is not None
    assert fast._documents[TEXTS[name]].plan is not None, name
    fast.compiled = False
    uncompiled = await _send(client, name, variables, token)
    fast.enabled = False
    viewed = await _send(client, name, variables, token)
    fast.compiled, fast.enabled = True, True
    assert planned.content == uncompiled.content == ad_hoc.content, name
    assert planned.json() == viewed.json(), name
    return dict(planned.json())


def _masked(value: Any, keys: frozenset[str] = RANDOM) -> Any:
    if isinstance(value, dict):
        return {k: "<random>" if k in keys and v is not None else _masked(v, keys)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, keys) for v in value]
    return value


async def _twice(client: httpx.AsyncClient, fast: FastGraphQL, name: str,
                 planned: tuple[Any, str | None],
                 uncompiled: tuple[Any, str | None],
                 also: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A request that changes state, once with its plan and once on graphql-core (each with
    its own variables and token, so both find the state they need): the same answer, but for
    values random by design (and the keys in ``also``: what the first request created); the
    order of keys is compared too."""
    fast.compiled = True
    first = (await _send(client, name, *planned)).json()
    fast.compiled = False
    second = (await _send(client, name, *uncompiled)).json()
    fast.compiled = True
    a, b = orjson.dumps(_masked(first, RANDOM | also)), orjson.dumps(_masked(second,
                                                                              RANDOM | also))
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    assert a == b, (name, a[max(0, at - 120):at + 60], b[max(0, at - 120):at + 60])
    return dict(first)


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def _login(client: httpx.AsyncClient, user_id: str) -> Account:
    response = await client.post("/graphql", json={"query": LOGIN, "variables": {
        "u": user_id, "p": PASSWORD}})
    data = response.json()["data"]["login"]
    return Account(data["member"]["id"], user_id, "", data["accessToken"], data["refreshToken"])


async def _session_id(client: httpx.AsyncClient, token: str) -> str:
    response = await client.post("/graphql", json={"query": "{ me { sessions { id current } } }"},
                                 headers={"authorization": f"Bearer {token}"})
    return next(s["id"] for s in response.json()["data"]["me"]["sessions"] if s["current"])


async def _admin(client: httpx.AsyncClient, rt: Runtime, clock: Any) -> tuple[str, str]:
    secret = await create_admin(rt)
    response = await client.post("/graphql", json={"query": LOGIN, "variables": {
        "u": "root-admin", "p": PASSWORD, "otp": pyotp.TOTP(secret).at(clock.now())}})
    return response.json()["data"]["login"]["accessToken"], secret


def test_every_registered_document_compiles(rt):
    fast = graphql_endpoint(create_app(rt, manage_db=False))
    assert len(fast._trusted) == 31
    assert sorted(p.name for p in fast._trusted.values() if p.plan is None) == []


async def test_every_registered_document_answers_alike_compiled_or_not(
        rt, app_client, clock, tmp_path):
    client, fast = app_client
    gql = GQL(client)
    alice = await register_member(gql, "alice", phone="+44 20 7946 0000",
                                  address="1 Clinic Road, Leeds", dateOfBirth="1990-04-01")
    admin_token, admin_secret = await _admin(client, rt, clock)
    partner = await announce(gql, Account("", "root-admin", "", admin_token, ""),
                             directory=tmp_path)
    version = (await policy.in_force(rt)).version
    for purpose in ("marketing", "research"):
        await _twice(client, fast, "AccountGiveConsent", ({"p": purpose, "v": version},
                                                          alice.token),
                     ({"p": purpose, "v": version}, alice.token))
    await _twice(client, fast, "AccountReportInaccuracy", ({"f": ["PHONE"], "n": "old"},
                                                           alice.token),
                 ({"f": ["ADDRESS"], "n": None}, alice.token), frozenset({"id"}))
    device = "d" * 32
    await _twice(client, fast, "BannerCookieChoice",
                 ({"d": device, "a": True, "p": False, "m": True}, None),
                 ({"d": device, "a": True, "p": False, "m": True}, None))

    tokens = {"anonymous": None, "bad": "not-a-jwt", "member": alice.token,
              "admin": admin_token}
    unknown = str(uuid.uuid4())
    # Requests that change nothing, whoever sends them: every document, every caller.
    quiet: dict[str, list[Any]] = {
        "Me": [None, {}, {"x": 1}],
        "AccountCenter": [None, {}],
        "AccountPublic": [None],
        "NoticesPage": [None],
        "BannerCookieRead": [{"d": device}, {"d": "short"}, {}, {"d": 5}],
        "AccountChangePassword": [{"c": "wrong password here", "n": NEW_PASSWORD}, {},
                                  {"c": 1, "n": [2]}],
        "AccountGiveConsent": [{"p": "marketing", "v": "0.0"}, {"p": "nope", "v": version},
                               {"p": "marketing"}],
        "AccountLogout": [{"r": "not-a-refresh-token"}, {}],
        "AccountObjectToPartner": [{"p": unknown}, {"p": None}, {}],
        "AccountPasskeyLoginFinish": [{"c": {}}, {"c": {"id": "x", "response": {}}}, {}],
        "AccountPasskeyRegisterFinish": [{"c": {}, "n": "key"}, {}],
        "AccountRegister": [{"i": {"userId": "x"}}, {}],
        "AccountRemovePasskey": [{"i": unknown}, {"i": "not-a-uuid"}, {}],
        "AccountReportInaccuracy": [{"f": ["NOPE"]}, {"f": []}, {}],
        "AccountResetPassword": [{"t": "bogus", "p": NEW_PASSWORD}, {"t": None}],
        "AccountRevokeSession": [{"i": unknown}, {}],
        "AccountVerifyEmail": [{"t": "bogus"}, {}],
        "AccountWithdrawConsent": [{"p": "nope"}, {}],
        "AccountWithdrawMembership": [{"p": "wrong password here"}, {}],
        "AccountUpdateProfile": [{"i": {"email": "not-an-email"}}, {"i": {"nope": 1}}, {}],
        "BannerCookieChoice": [{"d": "short", "a": True, "p": True, "m": True},
                               {"d": device}],
        "ConsoleLogin": [{"u": 1}],
        "ConsoleLogout": [{"t": "not-a-refresh-token"}, {}],
        "SessionRefresh": [{"r": "not-a-refresh-token"}, {}],
        "AccountLogin": [{"u": "alice"}],
        "AccountRequestPasswordReset": [{"e": 7}, {}],
        "AccountPasskeyLoginBegin": [{"u": 7}],
    }
    # Mutations without variables, from callers they refuse.
    for name in ("AccountExport", "AccountResendVerification", "AccountPasskeyRegisterBegin",
                 "AccountSignOutEverywhere"):
        for token in (None, "not-a-jwt", admin_token):
            body = await _three_ways(client, fast, name, None, token)
            assert _codes(body) in (["UNAUTHENTICATED"], ["FORBIDDEN"]), (name, body)
    seen: dict[str, set[str]] = {}
    for name, cases in quiet.items():
        for variables in cases:
            for caller, token in tokens.items():
                body = await _three_ways(client, fast, name, variables, token)
                seen.setdefault(name, set()).update(_codes(body) or ["OK"])
    # What the battery covered: answers with data, and each kind of error.
    assert seen["Me"] == {"OK", "UNAUTHENTICATED", "FORBIDDEN"}
    assert seen["AccountCenter"] == {"OK", "UNAUTHENTICATED", "FORBIDDEN"}
    assert seen["AccountChangePassword"] >= {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN"}
    assert seen["NoticesPage"] == {"OK"}
    assert seen["AccountGiveConsent"] == {"BAD_USER_INPUT", "NOT_FOUND", "UNAUTHENTICATED",
                                          "FORBIDDEN"}
    assert seen["AccountRegister"] == {"BAD_USER_INPUT"}
    assert "OK" in seen["BannerCookieRead"] and "BAD_USER_INPUT" in seen["BannerCookieRead"]
    me = await _three_ways(client, fast, "Me", None, alice.token)
    assert [c["purpose"] for c in me["data"]["me"]["consents"]] == ["marketing", "research"]
    assert me["data"]["me"]["dateOfBirth"] == "1990-04-01"
    assert me["data"]["me"]["status"] == "RESTRICTED"  # an inaccuracy report restricts
    center = await _three_ways(client, fast, "AccountCenter", None, alice.token)
    assert len(center["data"]["me"]["dataRequests"]) == 2
    assert len(center["data"]["me"]["sessions"]) == 1
    notices = await _three_ways(client, fast, "NoticesPage", None, None)
    assert [p["id"] for p in notices["data"]["outsourcingPartners"]] == [partner]

    # Refusals that count (rate limits, failed sign-ins), each path with its own name.
    wrong = "wrong password here"
    for name, key in (("AccountLogin", "u"), ("ConsoleLogin", "u")):
        await _twice(client, fast, name, ({key: "nobody-1", "p": wrong}, None),
                     ({key: "nobody-2", "p": wrong}, None))
    await _twice(client, fast, "AccountRegister",
                 ({"i": {"userId": "zed-1", "email": "no", "fullName": "Z", "password": "p"}},
                  None),
                 ({"i": {"userId": "zed-2", "email": "no", "fullName": "Z", "password": "p"}},
                  None))

    # Requests that change state: the same answer with or without a plan.
    second = await _login(client, "alice")
    third = await _login(client, "alice")
    await _twice(client, fast, "AccountLogin", ({"u": "alice", "p": PASSWORD}, None),
                 ({"u": "alice", "p": PASSWORD}, None))
    await _twice(client, fast, "SessionRefresh", ({"r": second.refresh_token}, None),
                 ({"r": third.refresh_token}, None))
    fourth, fifth = await _login(client, "alice"), await _login(client, "alice")
    await _twice(client, fast, "AccountLogout", ({"r": fourth.refresh_token}, None),
                 ({"r": fifth.refresh_token}, None))
    await _twice(client, fast, "AccountUpdateProfile",
                 ({"i": {"phone": "+44 20 7946 0001"}}, alice.token),
                 ({"i": {"phone": "+44 20 7946 0001"}}, alice.token))
    await _twice(client, fast, "AccountObjectToPartner", ({"p": partner}, alice.token),
                 ({"p": partner}, alice.token))
    await _twice(client, fast, "AccountWithdrawConsent", ({"p": "marketing"}, alice.token),
                 ({"p": "marketing"}, alice.token))
    sixth, seventh = await _login(client, "alice"), await _login(client, "alice")
    await _twice(client, fast, "AccountRevokeSession",
                 ({"i": await _session_id(client, sixth.token)}, alice.token),
                 ({"i": await _session_id(client, seventh.token)}, alice.token))
    await _twice(client, fast, "AccountChangePassword",
                 ({"c": PASSWORD, "n": NEW_PASSWORD}, alice.token),
                 ({"c": NEW_PASSWORD, "n": PASSWORD}, alice.token))
    await _twice(client, fast, "AccountRequestPasswordReset", ({"e": alice.email}, None),
                 ({"e": alice.email}, None))
    await _twice(client, fast, "AccountResendVerification", (None, alice.token),
                 (None, alice.token))
    await _twice(client, fast, "AccountPasskeyLoginBegin", ({"u": "alice"}, None),
                 ({"u": "alice"}, None))
    await _twice(client, fast, "AccountPasskeyRegisterBegin", (None, alice.token),
                 (None, alice.token))
    # Each export is itself recorded as a data request (the second lists the first's).
    exported = await _twice(client, fast, "AccountExport", (None, alice.token),
                            (None, alice.token), frozenset({"dataRequests"}))
    assert exported["data"]["exportMyData"]["format"] == "consentry.export/v1"
    await _twice(client, fast, "AccountRegister", (
        {"i": {"userId": "carol", "email": "carol@example.org", "fullName": "Carol Example",
               "password": PASSWORD}}, None), (
        {"i": {"userId": "dave", "email": "dave@example.org", "fullName": "Dave Example",
               "password": PASSWORD}}, None))
    carol, dave = await _login(client, "carol"), await _login(client, "dave")
    await _twice(client, fast, "AccountSignOutEverywhere", (None, carol.token),
                 (None, dave.token))
    erin = await register_member(gql, "erin")
    frank = await register_member(gql, "frank")
    withdrawn = await _twice(client, fast, "AccountWithdrawMembership",
                             ({"p": PASSWORD}, erin.token), ({"p": PASSWORD}, frank.token))
    assert _codes(withdrawn) == []
    clock.advance(seconds=31)
    code = pyotp.TOTP(admin_secret).at(clock.now())
    fast.compiled = True
    console = (await _send(client, "ConsoleLogin", {"u": "root-admin", "p": PASSWORD,
                                                    "otp": code}, None)).json()
    clock.advance(seconds=31)
    fast.compiled = False
    again = (await _send(client, "ConsoleLogin", {"u": "root-admin", "p": PASSWORD,
                                                  "otp": pyotp.TOTP(admin_secret).at(
                                                      clock.now())}, None)).json()
    fast.compiled = True
    assert _masked(console) == _masked(again) == {"data": {"login": {
        "accessToken": "<random>", "refreshToken": "<random>", "role": "ADMIN"}}}
    await _twice(client, fast, "ConsoleLogout",
                 ({"t": console["data"]["login"]["refreshToken"]}, None),
                 ({"t": again["data"]["login"]["refreshToken"]}, None))
    assert SENT == set(DOCUMENTS)


DIRECTIVE = "query WithDirective($s: Boolean!) { policy @include(if: $s) { version } }"
FRAGMENT = "query WithFragment { me { ...Names } } fragment Names on Member { userId fullName }"
TYPENAME = "query WithTypename { __typename policy { version } }"
SYNC_PERMISSION = "query AdminAdapters { partners { id adapter } }"


@pytest.mark.parametrize(("text", "reason"), [
    (DIRECTIVE, "directives"),
    (FRAGMENT, "fragments or more than one operation"),
    (TYPENAME, "meta field __typename"),
    # Partner.adapter is a plain attribute behind a permission: not planned, never skipped.
    (SYNC_PERMISSION, "Partner.adapter is not a plain attribute"),
])
def test_what_the_compiler_does_not_plan(rt, text, reason):
    fast = graphql_endpoint(create_app(rt, manage_db=False))
    from graphql import parse

    with pytest.raises(Unsupported) as refused:
        compile_operation(fast.schema, parse(text))
    assert str(refused.value) == reason


async def test_a_document_the_compiler_does_not_plan_runs_uncompiled(rt, gql, member, admin):
    from api.service.asgi import ConsentryGraphQL

    texts = {document_hash(t): t for t in (DIRECTIVE, FRAGMENT, TYPENAME, SYNC_PERMISSION)}
    fast = FastGraphQL(ConsentryGraphQL(rt), rt, trusted={**texts, DOCUMENTS["Me"]: load()[
        DOCUMENTS["Me"]]})
    assert [p.plan is None for p in fast._trusted.values()] == [True, True, True, True, False]
    transport = httpx.ASGITransport(app=fast, client=("127.0.0.1", 50003))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        async def by_hash(text: str, variables: Any, token: str) -> Any:
            return (await client.post("/", headers={"authorization": f"Bearer {token}"}, json={
                "variables": variables, "extensions": {"persistedQuery": {
                    "version": 1, "sha256Hash": document_hash(text)}}})).json()

        assert await by_hash(DIRECTIVE, {"s": True}, member.token) == {
            "data": {"policy": {"version": "1.0"}}}
        assert await by_hash(DIRECTIVE, {"s": False}, member.token) == {"data": {}}
        assert await by_hash(FRAGMENT, {}, member.token) == {
            "data": {"me": {"userId": "alice", "fullName": "Alice Example"}}}
        assert await by_hash(TYPENAME, {}, member.token) == {
            "data": {"__typename": "Query", "policy": {"version": "1.0"}}}
        refused = await by_hash(SYNC_PERMISSION, {}, member.token)
        assert refused["data"] is None
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
        assert await by_hash(SYNC_PERMISSION, {}, admin.token) == {"data": {"partners": []}}


async def test_a_registered_hash_runs_its_plan(app_client):
    """The plan is what answers (here another document's, swapped in): not graphql-core."""
    client, fast = app_client
    me = fast._trusted[DOCUMENTS["Me"]]
    public = fast._trusted[DOCUMENTS["AccountPublic"]]
    fast._trusted[DOCUMENTS["Me"]] = dataclasses.replace(me, plan=public.plan)
    body = (await _send(client, "Me", None, None)).json()
    assert list(body["data"]) == ["policy", "purposes"]
    fast.compiled = False
    body = (await _send(client, "Me", None, None)).json()
    assert body["data"] == {"me": None}
    assert _codes(body) == ["UNAUTHENTICATED"]


async def test_an_ad_hoc_document_runs_its_plan(app_client, member):
    """An ad-hoc document is compiled the first time it is seen and its plan answers from
    then on (here another document's plan, swapped in): not graphql-core."""
    client, fast = app_client
    me, public = TEXTS["Me"], TEXTS["AccountPublic"]
    body = (await _ad_hoc(client, me, None, member.token)).json()
    assert body["data"]["me"]["userId"] == "alice"
    await _ad_hoc(client, public, None, None)
    fast._documents[me] = dataclasses.replace(fast._documents[me],
                                              plan=fast._documents[public].plan)
    body = (await _ad_hoc(client, me, None, member.token)).json()
    assert list(body["data"]) == ["policy", "purposes"]
    fast.compiled = False
    body = (await _ad_hoc(client, me, None, member.token)).json()
    assert body["data"]["me"]["userId"] == "alice"


CONSENT_PAIR = ("mutation($p: String!, $v: String!) { g: giveConsent(purpose: $p, "
                "policyVersion: $v) { state receipt } w: withdrawConsent(purpose: $p) "
                "{ state receipt } }")


async def test_ad_hoc_mutations_run_compiled_serially_as_the_view(rt, app_client, member):
    """Consent writes as the web pages send them ad hoc: compiled (serially, give then
    withdraw), on graphql-core and through strawberry's view, the same answers (receipts are
    random by design), errors included."""
    client, fast = app_client
    version = (await policy.in_force(rt)).version
    answers = []
    for compiled, enabled in ((True, True), (False, True), (True, False)):
        fast.compiled, fast.enabled = compiled, enabled
        for variables in ({"p": "marketing", "v": version}, {"p": "marketing", "v": "0.1"},
                          {"p": "nope", "v": version}):
            body = (await _ad_hoc(client, CONSENT_PAIR, variables, member.token)).json()
            answers.append(orjson.dumps(_masked(body)))
        body = (await _ad_hoc(client, CONSENT_PAIR, {"p": "marketing", "v": version},
                              None)).json()
        answers.append(orjson.dumps(_masked(body)))
    fast.compiled, fast.enabled = True, True
    assert fast._documents[CONSENT_PAIR] is not None
    assert fast._documents[CONSENT_PAIR].plan is not None
    assert fast._documents[CONSENT_PAIR].plan.serial
    first = orjson.loads(answers[0])
    assert first["data"]["g"]["state"] == "GIVEN" and first["data"]["w"]["state"] == "WITHDRAWN"
    assert answers[0:4] == answers[4:8] == answers[8:12], answers
