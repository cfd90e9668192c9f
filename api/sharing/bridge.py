"""The bridge between the outbox and an adapter: the one place member data is handed over.

For each claimed event: re-check the member's grant for the partner at this instant (always;
with no grant, nothing is sent), decrypt the payload, keep only fields that are both granted
now and accepted by the adapter, build the read-only :class:`PartnerEvent`, and deliver it.
What was disclosed is returned to the queue, which records it in the ledger with the outcome.

Value-less events (``member.erasure``, ``member.revoked``, ``member.restricted``: the ref and
field names only) skip the grant re-check: they announce that the grant is gone or suspended,
and disclose nothing. A pull-only partner's adapter (``pushes = False``) is never called: its
events are ``held`` for ``partnerEvents`` (``api/sharing/events_feed.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.core.errors import BadInput, NotFound
from api.models.enums import PersonalField
from api.models.member import Member
from api.models.partner import Partner
from api.platform.runtime import Runtime
from api.security.envelope import DataKey, UndecryptableError
from api.security.sealed import open_sealed
from api.sharing import registry
from api.sharing.adapters import get_adapter_class, instantiate
from api.sharing.grants import grant_for, member_facts
from api.sharing.outbox import VALUELESS, payload_label
from partners.base import DeliveryError, PartnerAdapter, PartnerEvent, SharedMember

__all__ = ["ClaimedEvent", "DeliveryRun", "Dead", "Outcome", "Unavailable", "deliver_one",
           "event_for", "granted_fields", "safe_error"]

log = logging.getLogger("consentry.delivery")


@dataclass(slots=True)
class ClaimedEvent:
    """The columns a delivery reads of a claimed event (no model instances: cheaper)."""

    id: uuid.UUID
    partner_id: uuid.UUID
    member_id: uuid.UUID | None
    type: str
    payload_ct: bytes | None
    payload_plain: dict[str, Any] | None
    attempts: int
    created_at: datetime


class Dead(Exception):
    """Retrying cannot help (member destroyed, partner gone, no basis): dead-letter at once."""


class Unavailable(Exception):
    """The partner's adapter cannot be built now (not installed, not allowed, bad config)."""


def safe_error(exc: BaseException) -> str:
    """Attempt-log text: only messages known to be free of personal values and secrets."""
    if isinstance(exc, DeliveryError | Dead | Unavailable):
        text = str(exc) or type(exc).__name__
    else:
        text = f"adapter raised {type(exc).__name__}"
    return text[:255]


async def granted_fields(rt: Runtime, partner_id: str, member_ids: list[str],
                         at: datetime) -> dict[str, frozenset[str] | None]:
    """The fields (GraphQL names) each member is granted to the partner at ``at``, or None
    where the partner has no basis for the member. An unknown partner grants nothing; a
    database error propagates, so the batch is retried later instead of dead-lettered."""
    try:
        partner = await registry.state(rt, partner_id, at)
    except (NotFound, BadInput):
        return dict.fromkeys(member_ids)
    found = await Member.filter(id__in=member_ids)
    facts = await member_facts(found, [partner], at)
    out: dict[str, frozenset[str] | None] = dict.fromkeys(member_ids)
    for m in found:
        grant = grant_for(partner, facts[str(m.id)])
        out[str(m.id)] = None if grant is None else frozenset(f.graphql for f in grant.fields)
    return out


@dataclass
class DeliveryRun:
    """Per-run caches: partner rows and adapter instances are built once per run; grants
    and partner rows are re-read for every batch (:meth:`next_batch`)."""

    rt: Runtime
    partners: dict[str, Partner | None]
    adapters: dict[str, PartnerAdapter | Unavailable]
    keys: dict[str, DataKey]
    lock: asyncio.Lock
    grants: dict[tuple[str, str], asyncio.Future[frozenset[str] | None]] = field(default_factory=dict)

    async def load_grants(self, rows: Iterable[ClaimedEvent]) -> None:
        """Every grant re-check a batch needs: one partner state, one member query and one
        consent query per partner."""
        wanted: dict[str, set[str]] = {}
        for r in rows:
            if r.member_id is not None and r.type not in VALUELESS:
                wanted.setdefault(str(r.partner_id), set()).add(str(r.member_id))
        now = self.rt.now()
        for partner_id, member_ids in wanted.items():
            answers = await granted_fields(self.rt, partner_id, sorted(member_ids), now)
            for member_id in member_ids:
                done = asyncio.get_running_loop().create_future()
                done.set_result(answers.get(member_id))
                self.grants[(partner_id, member_id)] = done

    async def grant(self, partner_id: str, member_id: str) -> frozenset[str] | None:
        """The grant re-check, once per partner and member within a batch."""
        key = (partner_id, member_id)
        if key not in self.grants:
            self.grants[key] = asyncio.ensure_future(self._one_grant(partner_id, member_id))
        return await self.grants[key]

    async def _one_grant(self, partner_id: str, member_id: str) -> frozenset[str] | None:
        answers = await granted_fields(self.rt, partner_id, [member_id], self.rt.now())
        return answers[member_id]

    def next_batch(self) -> None:
        """Forget grants and partner rows, so the next batch re-reads them."""
        self.grants.clear()
        self.partners.clear()

    async def load_partners(self, rows: Iterable[ClaimedEvent]) -> None:
        """A batch's partner rows in one query, before its deliveries start (otherwise every
        concurrent delivery misses the cache at once and reads the same row)."""
        wanted = {str(r.partner_id) for r in rows} - set(self.partners)
        if wanted:
            found = {str(p.id): p for p in await Partner.filter(id__in=list(wanted))}
            self.partners.update({pid: found.get(pid) for pid in wanted})

    async def partner(self, partner_id: str) -> Partner | None:
        if partner_id not in self.partners:
            self.partners[partner_id] = await Partner.get_or_none(id=partner_id)
        return self.partners[partner_id]

    async def adapter(self, partner: Partner) -> PartnerAdapter:
        pid = str(partner.id)
        async with self.lock:
            if pid not in self.adapters:
                self.adapters[pid] = self._build(partner)
        built = self.adapters[pid]
        if isinstance(built, Unavailable):
            raise Unavailable(str(built))
        return built

    def _build(self, partner: Partner) -> PartnerAdapter | Unavailable:
        try:
            cls = get_adapter_class(self.rt, partner.adapter)
        except BadInput as exc:
            return Unavailable(exc.message)
        try:
            config = (json.loads(open_sealed(self.rt.keys, f"partner-config/{partner.id}",
                                             partner.config_ct)) if partner.config_ct else {})
        except (UndecryptableError, ValueError):
            return Unavailable("partner adapter config does not decrypt")
        try:
            return instantiate(self.rt, cls, config)
        except Exception:  # the message might echo a secret value: keep only the class
            return Unavailable(f"adapter {partner.adapter!r} rejected its config")

    async def close(self) -> None:
        for adapter in self.adapters.values():
            if isinstance(adapter, PartnerAdapter):
                try:
                    await adapter.aclose()
                except Exception:
                    log.exception("closing adapter %s failed", type(adapter).__name__)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def event_for(run: DeliveryRun, row: ClaimedEvent, partner: Partner,
                     adapter: PartnerAdapter) -> tuple[PartnerEvent, list[str]]:
    """The minimized event and the PersonalField values it actually discloses."""
    plain = row.payload_plain or {}
    member: dict[str, Any] = {"ref": plain.get("ref")}
    if row.payload_ct:
        key = run.keys.get(str(row.member_id))
        if key is None:
            raise Dead("member destroyed")
        member = json.loads(key.decrypt(payload_label(str(row.id)), bytes(row.payload_ct)))
    allowed = set(type(adapter).accepts)
    if row.type in VALUELESS:
        concerned = tuple(PersonalField(f).graphql for f in plain.get("fields", []))
        return PartnerEvent(id=str(row.id), type=row.type, partner=partner.name,
                            at=_iso(row.created_at), member=SharedMember.of({"ref": member["ref"]}),
                            fields=concerned), []
    if row.member_id is not None:
        granted = await run.grant(str(partner.id), str(row.member_id))
        if granted is None:
            raise Dead("no basis to share this member any more")
        allowed &= granted
    personal = {k: v for k, v in member.items() if k != "ref"}
    sent = {k: v for k, v in personal.items() if k in allowed}
    if personal and not sent:
        raise Dead("no field of this event is granted any more")
    fields = [f for f in plain.get("fields", []) if PersonalField(f).graphql in sent]
    event = PartnerEvent(id=str(row.id), type=row.type, partner=partner.name,
                         at=_iso(row.created_at), member=SharedMember.of({"ref": member["ref"], **sent}),
                         fields=tuple(PersonalField(f).graphql for f in fields))
    return event, fields


@dataclass
class Outcome:
    row: ClaimedEvent
    kind: str  # delivered | held (pull-only partner) | failed | dead
    ms: int
    error: str | None = None
    partner: Partner | None = None
    fields: list[str] | None = None


async def deliver_one(run: DeliveryRun, row: ClaimedEvent) -> Outcome:
    """Try one event; never raises. The outcome is written later, with the whole batch."""
    started = time.perf_counter()

    def done(kind: str, **kw: Any) -> Outcome:
        return Outcome(row, kind, int((time.perf_counter() - started) * 1000), **kw)

    try:
        partner = await run.partner(str(row.partner_id))
        if partner is None:
            raise Dead("partner not found")
        if partner.retired_at is not None and row.type not in VALUELESS:
            raise Dead("partner retired")
        adapter = await run.adapter(partner)
        if not type(adapter).pushes:
            return done("held", partner=partner)
        event, fields = await event_for(run, row, partner, adapter)
        await adapter.deliver(event)
    except Dead as exc:
        return done("dead", error=safe_error(exc))
    except Exception as exc:  # any adapter failure is retried; never crash the run
        if not isinstance(exc, DeliveryError | Unavailable):
            log.warning("delivery of %s failed: %s", row.id, type(exc).__name__)
        return done("failed", error=safe_error(exc))
    return done("delivered", partner=partner, fields=fields)


