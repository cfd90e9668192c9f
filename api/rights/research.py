"""Research datasets (policy 5.2): k-anonymous rows of the members who consented to ``research``.

Who: ACTIVE members whose ``research`` consent is in force at the instant of the request (the
grant rule's read, :func:`api.sharing.grants.consents_in_force`). RESTRICTED members (processing
restricted, Art. 18), DORMANT ones (data sealed in the vault) and withdrawn ones are left out.

What: each attribute has a generalization hierarchy (level 0 the finest, the top ``*``);
nothing raw leaves (the age band, not the birth date; the region, not the address). Starting
from the finest levels, the attribute whose next level leaves the fewest members in classes
smaller than ``k`` is raised one level (Datafly-style full-domain generalization), until at most
5 % of the population would be suppressed; then classes under ``k`` are suppressed and counted.
Every released combination of values is therefore shared by at least ``k`` members. The rows
carry the attribute values only, shuffled: no id, no stable order, nothing that links a row to
a member or to a row of another dataset. docs/research-datasets.md has the hierarchies.

The rows are returned once and not stored; the audit trail and ``research_datasets`` keep the
parameters and the counts.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tortoise.functions import Count

from api.core.errors import BadInput
from api.models.article5 import ResearchAttribute, ResearchDataset
from api.models.consent import Purpose
from api.models.enums import LegalBasis, MemberStatus
from api.models.member import Member, MemberKey
from api.models.partner import Purchase
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.envelope import unwrap
from api.sharing.grants import consents_in_force

__all__ = ["MIN_K", "SUPPRESSION_LIMIT", "PURPOSE", "Dataset", "HIERARCHIES", "region_of",
           "age_on", "generalize", "create_dataset"]

MIN_K = 5
SUPPRESSION_LIMIT = 0.05  # at most this share of the population is suppressed, if possible
PURPOSE = "research"
TOP = "*"
UNKNOWN = "unknown"
_CHUNK = 2000  # members read per query: memory and statement size stay flat at any size

Base = Hashable  # an attribute's ungeneralized value (age, region, year, count, purposes)


@dataclass(frozen=True)
class Dataset:
    id: str
    created_at: datetime
    k: int
    attributes: list[ResearchAttribute]
    rows: int
    suppressed: int
    data: list[dict[str, str]]
    levels: dict[str, int]


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def region_of(address: str | None) -> str:
    """The coarse region of an address: its last comma-separated component (the town or the
    country, as written), without any word holding a digit (postcodes, house numbers),
    upper-cased, at most 40 characters. ``unknown`` when nothing is left, or when the address has
    no comma (its one part is the street: there is no coarse part to tell apart)."""
    if not address or "," not in address:
        return UNKNOWN
    words = [w for w in address.split(",")[-1].split() if not any(c.isdigit() for c in w)]
    return " ".join(words).upper()[:40] or UNKNOWN


def _band(value: int, width: int) -> str:
    low = value // width * width
    return f"{low}-{low + width - 1}"


def _age(level: int) -> Callable[[Base], str]:
    width = (5, 10, 20, 40)[level]
    return lambda age: UNKNOWN if age is None else _band(int(str(age)), width)


_PURCHASE_BANDS = (
    ((0, "0"), (1, "1"), (2, "2-3"), (4, "4-7"), (8, "8-15"), (16, "16+")),
    ((0, "0"), (1, "1-3"), (4, "4-15"), (16, "16+")),
    ((0, "0"), (1, "1+")),
)


def _purchases(level: int) -> Callable[[Base], str]:
    bands = _PURCHASE_BANDS[level]

    def band(count: Base) -> str:
        n = int(str(count))
        return next(label for low, label in reversed(bands) if n >= low)
    return band


def _year(level: int) -> Callable[[Base], str]:
    if level == 0:
        return str
    width = (5, 10)[level - 1]
    return lambda year: _band(int(str(year)), width)


# Per attribute, the levels below the top (``*``), finest first. Bands nest: each level's band
# lies inside one band of the next level, so raising a level only merges classes.
HIERARCHIES: dict[ResearchAttribute, tuple[Callable[[Base], str], ...]] = {
    ResearchAttribute.AGE_BAND: tuple(_age(i) for i in range(4)),
    ResearchAttribute.REGION: (str,),
    ResearchAttribute.MEMBER_SINCE_YEAR: tuple(_year(i) for i in range(3)),
    ResearchAttribute.PURCHASE_COUNT: tuple(_purchases(i) for i in range(3)),
    ResearchAttribute.CONSENTED_PURPOSES: (str,),
}


def _label(attribute: ResearchAttribute, level: int, base: Base) -> str:
    steps = HIERARCHIES[attribute]
    return TOP if level >= len(steps) else steps[level](base)


@dataclass
class _Node:
    levels: tuple[int, ...]
    classes: dict[tuple[str, ...], tuple[int, tuple[Base, ...]]]  # values -> (count, a base)

    def suppressed(self, k: int) -> int:
        return sum(n for n, _ in self.classes.values() if n < k)


def _raise(node: _Node, attributes: list[ResearchAttribute], i: int) -> _Node:
    """The node one level higher in attribute ``i``, from this node's classes (nested bands)."""
    levels = tuple(lv + (j == i) for j, lv in enumerate(node.levels))
    out: dict[tuple[str, ...], tuple[int, tuple[Base, ...]]] = {}
    for values, (n, base) in node.classes.items():
        key = (*values[:i], _label(attributes[i], levels[i], base[i]), *values[i + 1:])
        have = out.get(key)
        out[key] = (n + have[0], base) if have else (n, base)
    return _Node(levels, out)


def generalize(attributes: list[ResearchAttribute], bases: Iterable[tuple[Base, ...]],
               k: int) -> tuple[dict[tuple[str, ...], int], int, tuple[int, ...]]:
    """Released classes (values -> count, every count >= k), the number suppressed, the levels."""
    counted = Counter(bases)
    population = sum(counted.values())
    budget = int(population * SUPPRESSION_LIMIT)
    node = _Node(tuple(0 for _ in attributes), {})
    for base, n in counted.items():
        key = tuple(_label(a, 0, b) for a, b in zip(attributes, base, strict=True))
        have = node.classes.get(key)
        node.classes[key] = (n + have[0], base) if have else (n, base)
    while node.suppressed(k) > budget:
        options = [(i, _raise(node, attributes, i)) for i, a in enumerate(attributes)
                   if node.levels[i] < len(HIERARCHIES[a])]
        if not options:
            break
        # Fewest suppressed; on a tie the step that loses least (the attribute with the most
        # levels: one step of it is the smaller share of its range), then the attribute order.
        _, node = min(options, key=lambda o: (
            o[1].suppressed(k), 1 / (len(HIERARCHIES[attributes[o[0]]]) + 1), o[0]))
    released = {values: n for values, (n, _) in node.classes.items() if n >= k}
    return released, population - sum(released.values()), node.levels


def _attributes(attributes: list[ResearchAttribute | str]) -> list[ResearchAttribute]:
    out: list[ResearchAttribute] = []
    for a in attributes:
        try:
            attr = ResearchAttribute(a)
        except ValueError:
            raise BadInput(f"unknown research attribute {a}", field="attributes") from None
        if attr not in out:
            out.append(attr)
    if not out:
        raise BadInput("name at least one attribute", field="attributes")
    return out


async def _population(rt: Runtime, now: datetime,
                      attributes: list[ResearchAttribute]) -> list[tuple[Base, ...]]:
    """One tuple of base values per ACTIVE member with ``research`` consent in force at ``now``,
    read in id order, ``_CHUNK`` members at a time."""
    names = await Purpose.filter(legal_basis=LegalBasis.CONSENT).values_list("name", flat=True)
    purposes = sorted({*(str(n) for n in names), PURPOSE})
    personal = {ResearchAttribute.AGE_BAND, ResearchAttribute.REGION} & set(attributes)
    out: list[tuple[Base, ...]] = []
    after: Any = None
    while True:
        query = Member.filter(status=MemberStatus.ACTIVE, created_at__lte=now)
        if after is not None:
            query = query.filter(id__gt=after)
        rows = await query.order_by("id").limit(_CHUNK).values(
            "id", "created_at", "date_of_birth_ct", "address_ct")
        if not rows:
            return out
        after = rows[-1]["id"]
        consents = await consents_in_force([str(r["id"]) for r in rows], purposes, now)
        chosen = [r for r in rows if PURPOSE in consents.get(str(r["id"]), frozenset())]
        ids = [str(r["id"]) for r in chosen]
        keys = ({str(k.member_id): k for k in await MemberKey.filter(member_id__in=ids)}
                if personal and ids else {})
        bought: dict[str, int] = {}
        if ResearchAttribute.PURCHASE_COUNT in attributes and ids:
            counted = await (Purchase.filter(member_id__in=ids, at__lte=now)
                             .annotate(n=Count("id")).group_by("member_id")
                             .values("member_id", "n"))
            bought = {str(c["member_id"]): int(c["n"]) for c in counted}
        for r in chosen:
            mid = str(r["id"])
            dob: str | None = None
            address: str | None = None
            key_row = keys.get(mid)
            if personal and key_row is None:
                continue  # no data key: destroyed meanwhile
            if key_row is not None:
                key = unwrap(rt.keys, bytes(key_row.wrapped), key_row.kek_version, mid)
                if ResearchAttribute.AGE_BAND in attributes:
                    dob = key.decrypt_optional("date_of_birth", r["date_of_birth_ct"])
                if ResearchAttribute.REGION in attributes:
                    address = key.decrypt_optional("address", r["address_ct"])
            values: dict[ResearchAttribute, Base] = {
                ResearchAttribute.AGE_BAND: (age_on(date.fromisoformat(dob), now.date())
                                             if dob else None),
                ResearchAttribute.REGION: region_of(address),
                ResearchAttribute.MEMBER_SINCE_YEAR: r["created_at"].year,
                ResearchAttribute.PURCHASE_COUNT: bought.get(mid, 0),
                ResearchAttribute.CONSENTED_PURPOSES: ",".join(sorted(consents[mid])),
            }
            out.append(tuple(values[a] for a in attributes))


async def create_dataset(rt: Runtime, actor: str, k: int,
                         attributes: list[ResearchAttribute | str]) -> Dataset:
    """Build, audit (parameters and counts only) and return one dataset; its rows are not kept."""
    if k < MIN_K:
        raise BadInput(f"k must be at least {MIN_K}", field="k")
    attrs = _attributes(attributes)
    now = rt.now()
    released, suppressed, levels = generalize(attrs, await _population(rt, now, attrs), k)
    data: list[dict[str, str]] = []
    for values, n in released.items():
        row = {a.value: v for a, v in zip(attrs, values, strict=True)}
        data.extend(dict(row) for _ in range(n))
    random.SystemRandom().shuffle(data)
    dataset_id = str(uuid.uuid4())
    level_map = {a.value: lv for a, lv in zip(attrs, levels, strict=True)}
    await ResearchDataset.create(id=dataset_id, created_at=now, created_by=actor, k=k,
                                 attributes=[a.value for a in attrs], rows=len(data),
                                 suppressed=suppressed)
    await audit.record(rt, actor, "research.dataset", dataset_id, {
        "k": k, "attributes": [a.value for a in attrs], "rows": len(data),
        "suppressed": suppressed, "levels": level_map})
    return Dataset(dataset_id, now, k, attrs, len(data), suppressed, data, level_map)
