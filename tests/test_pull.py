"""``sharedMembers`` over HTTP: only members with a basis, only granted fields, only in force,
pseudonymous refs, sealed keyset cursors, and a disclosure for every member returned."""

from __future__ import annotations

import base64

from api.models.partner import Disclosure
from tests.conftest import error_code, register_member
from tests.helpers_partners import (
    CHANGE,
    DISCLOSURES,
    RETIRE,
    SHARED,
    announce,
    give,
    long_sessions,  # noqa: F401 - autouse fixture
    nodes,
    partner_token,
    purchase,
    shared,
    withdraw,
)

NOTHING = {"userId": None, "email": None, "dateOfBirth": None}


async def test_nothing_is_shared_before_thirty_days(gql, client, admin, member, clock,
                                                    tmp_path):
    pid = await announce(gql, admin, directory=tmp_path)
    await purchase(gql, admin, member.id)
    clock.advance(days=29, hours=23)
    token = await partner_token(client, gql, admin, pid)
    page = await shared(gql, token)
    assert page == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    assert await Disclosure.all().count() == 0
    clock.advance(hours=1)
    token = await partner_token(client, gql, admin, pid)
    assert len(await nodes(gql, token)) == 1


async def test_only_granted_fields_and_only_members_with_a_basis(gql, client, admin, member,
                                                                 other_member, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=["PHONE"])
    await purchase(gql, admin, member.id)  # other_member bought nothing: no basis
    clock.advance(days=30)
    token = await partner_token(client, gql, admin, pid)
    (node,) = await nodes(gql, token)
    assert node["ref"].startswith("m_") and member.id not in node["ref"]
    assert {k: v for k, v in node.items() if k != "ref"} == {
        **NOTHING, "fullName": "Alice Example", "address": "1 Clinic Road, Leeds", "phone": None}


async def test_optional_fields_need_consent_and_stop_at_once(gql, client, admin, member, clock,
                                                             tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"],
                         optional=["PHONE"])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    token = await partner_token(client, gql, admin, pid)
    assert (await nodes(gql, token))[0]["phone"] is None
    await give(gql, member, f"partner:{pid}")
    clock.advance(seconds=1)
    assert (await nodes(gql, token))[0]["phone"] == "+44 20 7946 0000"
    await withdraw(gql, member, f"partner:{pid}")
    (node,) = await nodes(gql, token)
    assert node["phone"] is None and node["fullName"] == "Alice Example"


async def test_consent_partner_serves_only_consenting_members(gql, client, admin, member,
                                                              other_member, clock, tmp_path):
    pid = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                         directory=tmp_path, fields=["DATE_OF_BIRTH"], optional=[])
    await purchase(gql, admin, other_member.id)  # a purchase is no basis for a consent partner
    await give(gql, member, "research")
    clock.advance(days=30)
    token = await partner_token(client, gql, admin, pid)
    assert [n["dateOfBirth"] for n in await nodes(gql, token)] == ["1990-04-01"]
    clock.advance(seconds=1)
    await withdraw(gql, member, "research")
    assert await nodes(gql, token) == []


async def test_refs_are_stable_per_partner_and_differ_between_partners(gql, client, admin,
                                                                       member, clock, tmp_path):
    a = await announce(gql, admin, "PartnerA", directory=tmp_path)
    b = await announce(gql, admin, "PartnerB", directory=tmp_path)
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    ta, tb = (await partner_token(client, gql, admin, a),
              await partner_token(client, gql, admin, b))
    ref_a1, ref_a2 = (await nodes(gql, ta))[0]["ref"], (await nodes(gql, ta))[0]["ref"]
    ref_b = (await nodes(gql, tb))[0]["ref"]
    assert ref_a1 == ref_a2 and ref_a1 != ref_b


async def test_keyset_pages_with_sealed_cursors(gql, client, admin, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["EMAIL"], optional=[])
    ids = []
    for i in range(5):
        account = await register_member(gql, f"buyer{i}")
        ids.append(account.id)
        await purchase(gql, admin, account.id)
    clock.advance(days=30)
    token = await partner_token(client, gql, admin, pid)
    seen, after, pages = [], None, 0
    while True:
        page = await shared(gql, token, first=2, after=after)
        pages += 1
        for edge in page["edges"]:
            seen.append(edge["node"]["email"])
            raw = base64.urlsafe_b64decode(edge["cursor"] + "==")
            assert all(i.encode() not in raw and i not in edge["cursor"] for i in ids)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3 and sorted(seen) == sorted(f"buyer{i}@example.org" for i in range(5))
    assert len(set(seen)) == 5
    for bad in ("garbage", after[:-2] + ("AA" if not after.endswith("AA") else "BB")):
        body = await gql(SHARED, {"first": 2, "after": bad}, token=token)
        assert error_code(body) == "BAD_USER_INPUT"
    for first in (0, 101, -1):
        assert error_code(await gql(SHARED, {"first": first}, token=token)) == "BAD_USER_INPUT"


async def test_a_cursor_is_bound_to_its_partner(gql, client, admin, clock, tmp_path):
    a = await announce(gql, admin, "PartnerA", directory=tmp_path, fields=["EMAIL"], optional=[])
    b = await announce(gql, admin, "PartnerB", directory=tmp_path, fields=["EMAIL"], optional=[])
    for i in range(2):
        await purchase(gql, admin, (await register_member(gql, f"buyer{i}")).id)
    clock.advance(days=30)
    ta, tb = (await partner_token(client, gql, admin, a),
              await partner_token(client, gql, admin, b))
    cursor = (await shared(gql, ta, first=1))["pageInfo"]["endCursor"]
    assert error_code(await gql(SHARED, {"first": 1, "after": cursor}, token=tb)) == (
        "BAD_USER_INPUT")


async def test_every_pull_is_a_disclosure_the_member_sees(gql, client, admin, member,
                                                          other_member, clock, tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    token = await partner_token(client, gql, admin, pid)
    await nodes(gql, token)
    clock.advance(minutes=1)
    await nodes(gql, token)
    mine = (await gql(DISCLOSURES, token=member.token))["data"]["me"]["disclosures"]
    assert [{k: v for k, v in d.items() if k != "at"} for d in mine] == 2 * [{
        "partner": "ShipFast", "fields": ["FULL_NAME", "ADDRESS"],
        "purpose": "order_fulfillment", "legalBasis": "CONTRACT"}]
    assert (await gql(DISCLOSURES, token=other_member.token))["data"]["me"]["disclosures"] == []


async def test_narrowing_and_retiring_take_effect_at_once(gql, client, admin, member, clock,
                                                          tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME", "ADDRESS"],
                         optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    token = await partner_token(client, gql, admin, pid)
    body = await gql(CHANGE, {"id": pid, "f": ["FULL_NAME"], "o": []}, token=admin.token)
    assert "errors" not in body, body
    (node,) = await nodes(gql, token)
    assert node["address"] is None and node["fullName"] == "Alice Example"
    await gql(RETIRE, {"id": pid}, token=admin.token)
    assert error_code(await gql(SHARED, token=token)) == "UNAUTHENTICATED"


async def test_a_widening_is_pulled_only_after_thirty_days(gql, client, admin, member, clock,
                                                           tmp_path):
    pid = await announce(gql, admin, directory=tmp_path, fields=["FULL_NAME"], optional=[])
    await purchase(gql, admin, member.id)
    clock.advance(days=30)
    await gql(CHANGE, {"id": pid, "f": ["FULL_NAME", "ADDRESS"], "o": []}, token=admin.token)
    clock.advance(days=29)
    token = await partner_token(client, gql, admin, pid)
    assert (await nodes(gql, token))[0]["address"] is None
    clock.advance(days=1)
    token = await partner_token(client, gql, admin, pid)
    assert (await nodes(gql, token))[0]["address"] == "1 Clinic Road, Leeds"


async def test_restricted_members_are_shared_with_nobody(gql, client, admin, member, clock,
                                                         tmp_path):
    """Every partner with a basis, a contract one and a consent one, stops at once."""
    shop = await announce(gql, admin, directory=tmp_path)
    lab = await announce(gql, admin, "LabCo", purpose="research", kind="RESEARCH",
                         directory=tmp_path, fields=["DATE_OF_BIRTH"], optional=[])
    await purchase(gql, admin, member.id)
    await give(gql, member, "research")
    clock.advance(days=30)
    tokens = [await partner_token(client, gql, admin, pid) for pid in (shop, lab)]
    assert [len(await nodes(gql, token)) for token in tokens] == [1, 1]
    body = await gql("mutation { reportInaccuracy(fields: [ADDRESS]) { id } }",
                     token=member.token)
    assert "errors" not in body, body
    assert [await nodes(gql, token) for token in tokens] == [[], []]
