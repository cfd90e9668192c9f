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

Objections (``objectToPartner``): a member who objected to a partner gives it nothing on a
consent basis, neither its CONSENT purpose nor its optional fields; a CONTRACT partner keeps its
required fields. The objection travels inside ``MemberFacts.consents`` as an
``objection:<partner id>`` marker, so every copy of the facts made with a changed purchase flag
or consent set carries it too.
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
from api.models.partner_audits import PartnerObjection

__all__ = ["Grant", "PartnerState", "MemberFacts", "grant_for", "partner_purpose",
           "objection_marker", "member_facts", "consents_in_force", "facts_of", "receivable"]


def partner_purpose(partner_id: str) -> str:
    """The CONSENT purpose that lets a partner's optional fields flow."""
    return f"partner:{partner_id}"


def objection_marker(partner_id: str) -> str:
    """How an objection to ``partner_id`` appears among a member's consents (never a purpose)."""
    return f"objection:{partner_id}"


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
    consents: frozenset[str]  # purposes consented to at the instant, and objection markers


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
    objected = objection_marker(partner.id) in member.consents
    if partner.legal_basis == LegalBasis.CONTRACT:
        if not member.has_purchase:
            return None
    elif partner.legal_basis == LegalBasis.CONSENT:
        if objected or partner.purpose not in member.consents:
            return None
    else:  # the registry refuses other bases for partners; never share on an unknown one
        return None
    fields = set(partner.fields)
    if not objected and partner.consent_purpose in member.consents:
        fields |= partner.optional_fields
    fields &= partner.accepts
    if not fields:
        return None
    return Grant(frozenset(fields), partner.purpose, partner.legal_basis)


def receivable(partner: PartnerState) -> frozenset[PersonalField]:
    """Every field ``grant_for`` could ever grant ``partner``, whatever the member's facts."""
    return (partner.fields | partner.optional_fields) & partner.accepts


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
    """Facts for many members against many partners: one consent query, one objection query."""
    purposes: set[str] = set()
    partner_ids: set[str] = set()
    for p in partners:
        purposes.update((p.purpose, p.consent_purpose))
        partner_ids.add(p.id)
    ids = [str(m.id) for m in members]
    consents = await consents_in_force(ids, purposes, at)
    if ids and partner_ids:
        objected: dict[str, set[str]] = {}
        for row in await PartnerObjection.filter(member_id__in=ids, partner_id__in=sorted(
                partner_ids), at__lte=at).values("member_id", "partner_id"):
            objected.setdefault(str(row["member_id"]), set()).add(
                objection_marker(str(row["partner_id"])))
        consents = {mid: consents.get(mid, frozenset()) | objected.get(mid, set())
                    for mid in set(consents) | set(objected)}
    return {str(m.id): facts_of(m, consents) for m in members}
