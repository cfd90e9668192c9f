"""The one rule that says which of a member's fields a partner may receive at an instant.

Pull (``api.sharing.pull``) and push (``api.sharing.push``) both call :func:`grant_for`, so they can never
disagree. It is a pure function over two snapshots, :class:`PartnerState` (derived from the
partner's change rows, see ``api.sharing.registry``) and :class:`MemberFacts` (status,
purchase flag, consents in force); the loaders below build those snapshots in bulk.

Legal basis: a partner names one purpose of the registry (``order_fulfillment``,
``research``...); the basis is that purpose's ``legal_basis``. CONTRACT serves members with a
recorded purchase, CONSENT serves members whose latest consent event for that purpose is GIVEN.
Optional fields always rest on consent to ``partner:<id>``. The grant never exceeds what the
adapter plugin declares it can take.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from api.models.consent import ConsentEvent
from api.models.enums import (
    ConsentState,
    LegalBasis,
    MemberStatus,
    PartnerKind,
    PartnerStatus,
    PersonalField,
)
from api.models.member import Member

__all__ = ["Grant", "PartnerState", "MemberFacts", "grant_for", "partner_purpose",
           "member_facts", "consents_in_force", "facts_of"]


def partner_purpose(partner_id: str) -> str:
    """The CONSENT purpose that lets a partner's optional fields flow."""
    return f"partner:{partner_id}"


@dataclass(frozen=True)
class PartnerState:
    """A partner as it stands at one instant (fields are the ones in force then)."""

    id: str
    name: str
    kind: PartnerKind
    purpose: str
    legal_basis: LegalBasis
    adapter: str
    status: PartnerStatus
    fields: frozenset[PersonalField]
    optional_fields: frozenset[PersonalField]
    accepts: frozenset[PersonalField]
    at: datetime

    @property
    def in_force(self) -> bool:
        return self.status == PartnerStatus.ACTIVE

    @property
    def consent_purpose(self) -> str:
        return partner_purpose(self.id)


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    status: MemberStatus
    has_purchase: bool
    consents: frozenset[str]  # purposes whose consent is GIVEN at the instant


@dataclass(frozen=True)
class Grant:
    fields: frozenset[PersonalField]
    purpose: str
    legal_basis: LegalBasis

    def field_names(self) -> list[str]:
        return sorted(f.value for f in self.fields)


def grant_for(partner: PartnerState, member: MemberFacts) -> Grant | None:
    """What ``partner`` may receive about ``member``; None means nothing at all."""
    if not partner.in_force or member.status != MemberStatus.ACTIVE:
        return None
    if partner.legal_basis == LegalBasis.CONTRACT:
        if not member.has_purchase:
            return None
    elif partner.legal_basis == LegalBasis.CONSENT:
        if partner.purpose not in member.consents:
            return None
    else:  # the registry refuses other bases for partners; never share on an unknown one
        return None
    fields = set(partner.fields)
    if partner.consent_purpose in member.consents:
        fields |= partner.optional_fields
    fields &= partner.accepts
    if not fields:
        return None
    return Grant(frozenset(fields), partner.purpose, partner.legal_basis)


async def consents_in_force(member_ids: Iterable[str], purposes: Iterable[str],
                            at: datetime) -> dict[str, frozenset[str]]:
    """Purposes each member has consented to at ``at`` (latest event per purpose wins).

    Events of one instant keep their order through their time-ordered ids (api.consent.consents)."""
    ids, wanted = list(member_ids), sorted(set(purposes))
    if not ids or not wanted:
        return {}
    rows = await (ConsentEvent.filter(member_id__in=ids, purpose__in=wanted, at__lte=at)
                  .order_by("at", "id").values("member_id", "purpose", "state"))
    latest: dict[tuple[str, str], str] = {}
    for row in rows:
        latest[(str(row["member_id"]), row["purpose"])] = row["state"]
    out: dict[str, set[str]] = {}
    for (mid, purpose), state in latest.items():
        if state == ConsentState.GIVEN:
            out.setdefault(mid, set()).add(purpose)
    return {mid: frozenset(p) for mid, p in out.items()}


def facts_of(member: Member, consents: dict[str, frozenset[str]]) -> MemberFacts:
    mid = str(member.id)
    return MemberFacts(mid, member.status, member.has_purchase, consents.get(mid, frozenset()))


async def member_facts(members: list[Member], partners: Iterable[PartnerState],
                       at: datetime) -> dict[str, MemberFacts]:
    """Facts for many members against many partners, with one consent query."""
    purposes: set[str] = set()
    for p in partners:
        purposes.update((p.purpose, p.consent_purpose))
    consents = await consents_in_force([str(m.id) for m in members], purposes, at)
    return {str(m.id): facts_of(m, consents) for m in members}
