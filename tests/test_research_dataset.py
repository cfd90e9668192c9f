"""Research datasets (policy 5.2): only members with ``research`` consent in force, attributes
generalized until every released combination is shared by at least k members, the rest
suppressed; rows carry no identifier; k below 5 is refused; the creation is audited without
its rows."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from api.models.article5 import ResearchAttribute as A
from api.models.article5 import ResearchDataset
from api.models.audit import AuditEntry
from api.rights.research import generalize, region_of
from bench.research import TOWNS, seed_members
from tests.conftest import error_code
from tests.helpers_partners import give

CREATE = """
mutation($k: Int!, $a: [ResearchAttribute!]!) {
  createResearchDataset(k: $k, attributes: $a) { id createdAt k attributes rows suppressed data }
}"""
ATTRIBUTES = [a.value for a in A]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def _create(gql, admin, k: int, attributes: list[str]) -> dict[str, Any]:
    body = await gql(CREATE, {"k": k, "a": attributes}, token=admin.token)
    assert "errors" not in body, body
    return body["data"]["createResearchDataset"]


def _draws(n: int) -> list[tuple[int, list[str]]]:
    """Draw the cases first (hypothesis runs sync functions); the test sends them."""
    drawn: list[tuple[int, list[str]]] = []

    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate])
    @given(k=st.integers(5, 60),
           attributes=st.lists(st.sampled_from(ATTRIBUTES), min_size=1, max_size=5, unique=True))
    def collect(k: int, attributes: list[str]) -> None:
        drawn.append((k, attributes))

    collect()
    return drawn


def test_region_is_a_coarse_part_of_the_address_never_the_address():
    assert region_of("1 Clinic Road, Leeds") == "LEEDS"
    assert region_of("Flat 2, 10 High Street, York YO1 7HH") == "YORK"
    assert region_of("12 rue de Rivoli, 75001 Paris, France") == "FRANCE"
    assert region_of("4 Mill Lane") == "unknown"  # one part: the street, nothing coarser
    assert region_of("4 Mill Lane, LS12 4AP") == "unknown"
    assert region_of(None) == "unknown"
    assert region_of("") == "unknown"


def test_bands_widen_until_every_class_holds_k():
    ages = [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]
    assert generalize([A.AGE_BAND], [(a,) for a in ages], 5) == (
        {("30-34",): 5, ("35-39",): 5}, 0, (0,))
    # One member alone in 35-39 and no suppression budget (5 % of 6 is 0): 10-year bands.
    assert generalize([A.AGE_BAND], [(a,) for a in (30, 31, 32, 33, 34, 35)], 5) == (
        {("30-39",): 6}, 0, (1,))
    # 20 + 1: 5 % of 21 is 1, so the lone member is suppressed instead of widening.
    assert generalize([A.REGION], [("LEEDS",)] * 20 + [("YORK",)], 5) == (
        {("LEEDS",): 20}, 1, (0,))
    assert generalize([A.PURCHASE_COUNT], [(2,), (3,), (2,), (3,), (2,)], 5) == (
        {("2-3",): 5}, 0, (0,))
    assert generalize([A.AGE_BAND, A.MEMBER_SINCE_YEAR], [(None, 2021)] * 5, 5) == (
        {("unknown", "2021"): 5}, 0, (0, 0))
    # Fewer members than k: nothing is released, however wide.
    assert generalize([A.REGION], [("LEEDS",)] * 3, 5) == ({}, 3, (1,))  # even at the top


async def test_k_below_5_and_no_attributes_are_refused(gql, admin):
    for k, attributes in ((4, ["AGE_BAND"]), (0, ["REGION"]), (5, [])):
        body = await gql(CREATE, {"k": k, "a": attributes}, token=admin.token)
        assert error_code(body) == "BAD_USER_INPUT", body
        assert body["data"] is None


async def test_k_anonymous_research_members_only_and_no_linking_values(gql, rt, admin):
    seeded = await seed_members(rt, 1000, seed=7)
    population = sum(1 for s in seeded if "research" in s.consents)
    assert 600 < population < 800 and population < len(seeded)  # some never consented
    identifiers = {v for s in seeded for v in (s.id, s.user_id, s.email, s.address,
                                              s.date_of_birth.isoformat())}
    towns = {t.upper() for t in TOWNS}
    ids = set()
    for k, attributes in _draws(8):
        d = await _create(gql, admin, k, attributes)
        ids.add(d["id"])
        assert (d["k"], d["attributes"]) == (k, attributes)
        assert d["rows"] == len(d["data"])
        assert d["rows"] + d["suppressed"] == population  # research consent, nobody else
        combos = Counter(tuple(row[a] for a in attributes) for row in d["data"])
        assert all(n >= k for n in combos.values()), (k, attributes, combos)
        for row in d["data"]:
            assert set(row) == set(attributes)  # no id, no extra column
            assert not set(row.values()) & identifiers
            assert not any(UUID.search(v) for v in row.values())
            if "REGION" in row:
                assert row["REGION"] in towns | {"*"}
            if "CONSENTED_PURPOSES" in row and row["CONSENTED_PURPOSES"] != "*":
                assert "research" in row["CONSENTED_PURPOSES"].split(",")
    assert len(ids) == 8 and not ids & identifiers

    # Two datasets of the same request: the same values, in an unrelated order, nothing shared
    # but the values themselves (no row id, no position that could be matched).
    first = await _create(gql, admin, 5, ["AGE_BAND", "MEMBER_SINCE_YEAR"])
    second = await _create(gql, admin, 5, ["AGE_BAND", "MEMBER_SINCE_YEAR"])
    assert first["id"] != second["id"]
    key = lambda row: (row["AGE_BAND"], row["MEMBER_SINCE_YEAR"])  # noqa: E731
    assert sorted(map(key, first["data"])) == sorted(map(key, second["data"]))
    assert len(set(map(key, first["data"]))) > 1
    assert list(map(key, first["data"])) != list(map(key, second["data"]))

    # Audited with parameters and counts; the rows are kept nowhere.
    entry = await AuditEntry.get(action="research.dataset", subject=second["id"])
    assert set(entry.detail) == {"k", "attributes", "rows", "suppressed", "levels"}
    assert entry.detail["attributes"] == ["AGE_BAND", "MEMBER_SINCE_YEAR"]
    stored = await ResearchDataset.get(id=second["id"])
    assert (stored.k, stored.rows, stored.suppressed) == (5, second["rows"], second["suppressed"])
    assert not hasattr(stored, "data")


async def test_withdrawing_research_consent_leaves_the_next_dataset(gql, rt, admin, member):
    await seed_members(rt, 10, seed=3, research_share=1.0)
    await give(gql, member, "research")
    before = await _create(gql, admin, 5, ["MEMBER_SINCE_YEAR"])
    assert before["rows"] + before["suppressed"] == 11
    body = await gql('mutation { withdrawConsent(purpose: "research") { state } }',
                     token=member.token)
    assert body["data"]["withdrawConsent"]["state"] == "WITHDRAWN"
    after = await _create(gql, admin, 5, ["MEMBER_SINCE_YEAR"])
    assert after["rows"] + after["suppressed"] == 10
