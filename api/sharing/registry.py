"""The partner registry: announcements, field changes, retirement, and what is in force when.

Nothing here is a flag a job must flip: a partner's status and fields at any instant are
DERIVED from its ``PartnerChange`` rows, so reads are right the moment a change's
``effective_at`` passes. Rules (contract invariants 4 and 8):

- ``ADDED`` and ``FIELDS_WIDENED`` take effect 30 days after their announcement.
- ``FIELDS_NARROWED`` and ``RETIRED`` take effect at once. A narrowing also trims every change
  still pending (the ADDED one of an announced partner, or an announced widening), so a later
  change coming into force can never hand back what the narrowing took away.
- The fields in force at T are those of the latest non-RETIRED change with
  ``effective_at <= T`` (ties: the later announcement, then widening after adding).
- A change is a widening when it adds any field to ``fields``, or any field to
  ``optionalFields`` that the partner could not receive at all; otherwise it is a narrowing.
  The reference is what is in force now (the announced set while the partner is ANNOUNCED).

The adapter config is sealed under the KEK (``partner-config/<id>``) and only
:func:`adapter_config` opens it, for delivery.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.consent import purposes
from api.core.errors import BadInput, Conflict, NotFound
from api.members import notifications
from api.models.enums import LegalBasis, PartnerChangeKind, PartnerKind, PartnerStatus, PersonalField
from api.models.partner import Partner, PartnerChange
from api.platform import audit, plain_reads
from api.platform.runtime import Runtime
from api.security.sealed import open_sealed, seal
from api.sharing.grants import PartnerState

__all__ = ["ANNOUNCE_DAYS", "announce", "change_fields", "retire", "states", "state",
           "concerned_by", "upcoming", "adapter_config", "state_from", "purpose_basis",
           "ChangeResult", "adapter_accepts"]

ANNOUNCE_DAYS = 30
_RANK = {PartnerChangeKind.ADDED: 0, PartnerChangeKind.FIELDS_WIDENED: 1,
         PartnerChangeKind.FIELDS_NARROWED: 2, PartnerChangeKind.RETIRED: 3}
_SERVED_BASES = (LegalBasis.CONTRACT, LegalBasis.CONSENT)
_NAME_MAX = 120


@dataclass(frozen=True)
class ChangeResult:
    """A change row and its partner as it stands now, for the GraphQL layer."""

    change: PartnerChange
    partner: PartnerState


def _config_label(partner_id: str) -> str:
    return f"partner-config/{partner_id}"


def _field_set(raw: Iterable[str]) -> frozenset[PersonalField]:
    return frozenset(PersonalField(v) for v in raw)


def _as_list(fields: Iterable[PersonalField]) -> list[str]:
    return sorted(PersonalField(f).value for f in fields)


# --- adapters and purposes -------------------------------------------------------------------

def _adapter_class(rt: Runtime, name: str) -> Any:
    from api.sharing import adapters  # part of the partners capability; imported late on purpose

    return adapters.get_adapter_class(rt, name)


def adapter_accepts(rt: Runtime, name: str) -> frozenset[PersonalField]:
    """Fields the adapter declares it can take; empty when it is no longer installed."""
    try:
        cls = _adapter_class(rt, name)
    except Exception:  # an uninstalled adapter can take nothing
        return frozenset()
    by_graphql = {f.graphql: f for f in PersonalField}
    return frozenset(by_graphql[n] for n in getattr(cls, "accepts", ()) if n in by_graphql)


async def _validate_adapter(rt: Runtime, name: str, config: Any) -> frozenset[PersonalField]:
    """The adapter is usable here and ``config`` passes every check (shape and deployment:
    a webhook's addresses, a jsonl directory); BadInput naming ``adapter`` or ``config``."""
    from api.sharing import adapters  # part of the partners capability; imported late on purpose

    if not isinstance(name, str) or not name.strip():
        raise BadInput("adapter is required", field="adapter")
    if config is not None and not isinstance(config, dict):
        raise BadInput("config must be a JSON object", field="config")
    try:
        await adapters.check_config(rt, name, config or {})
    except BadInput as exc:
        raise BadInput(exc.message[:300], field=exc.extensions.get("field", "config")) from None
    return adapter_accepts(rt, name)


async def purpose_basis(name: str, conn: BaseDBAsyncClient | None = None) -> LegalBasis | None:
    """The legal basis a partner's purpose rests on, from the purposes registry."""
    view = await purposes.get_purpose(name, conn)
    return view.legal_basis if view else None


# --- deriving state --------------------------------------------------------------------------

def _order(change: PartnerChange) -> tuple[datetime, datetime, int]:
    return (change.effective_at, change.announced_at, _RANK[PartnerChangeKind(change.kind)])


def state_from(partner: Partner, changes: list[PartnerChange], at: datetime,
               accepts: frozenset[PersonalField], basis: LegalBasis) -> PartnerState:
    """The partner at ``at`` from its change rows (pure)."""
    added = next((c for c in changes if c.kind == PartnerChangeKind.ADDED), None)
    retired = any(c.kind == PartnerChangeKind.RETIRED and c.effective_at <= at for c in changes)
    in_force = [c for c in changes if c.effective_at <= at and c.kind != PartnerChangeKind.RETIRED]
    if retired:
        status = PartnerStatus.RETIRED
    elif added is not None and added.effective_at <= at:
        status = PartnerStatus.ACTIVE
    else:
        status = PartnerStatus.ANNOUNCED
    source = max(in_force, key=_order) if in_force and status != PartnerStatus.ANNOUNCED else added
    fields = _field_set(source.fields_) if source else frozenset()
    optional = _field_set(source.optional_fields) if source else frozenset()
    return PartnerState(str(partner.id), partner.name, PartnerKind(partner.kind), partner.purpose,
                        basis, partner.adapter, status, fields, optional, accepts, at)


async def _changes_by_partner(ids: list[str],
                              conn: BaseDBAsyncClient | None = None) -> dict[str, list[PartnerChange]]:
    out: dict[str, list[PartnerChange]] = {pid: [] for pid in ids}
    if ids:
        for c in await PartnerChange.filter(partner_id__in=ids).using_db(conn):
            out[str(c.partner_id)].append(c)
    return out


async def _states_for(rt: Runtime, partners: list[Partner], at: datetime,
                      conn: BaseDBAsyncClient | None = None) -> list[PartnerState]:
    changes = await _changes_by_partner([str(p.id) for p in partners], conn)
    bases: dict[str, LegalBasis | None] = {}
    out = []
    for p in partners:
        if p.purpose not in bases:
            bases[p.purpose] = await purpose_basis(p.purpose, conn)
        basis = bases[p.purpose] or LegalBasis.LEGAL_OBLIGATION  # unknown: grant_for refuses it
        out.append(state_from(p, changes[str(p.id)], at, adapter_accepts(rt, p.adapter), basis))
    return out


async def states(rt: Runtime, at: datetime | None = None, *,
                 partner_ids: list[str] | None = None,
                 conn: BaseDBAsyncClient | None = None) -> list[PartnerState]:
    """Every partner (or the given ones) as it stands at ``at`` (default now), by name."""
    query = Partner.all().using_db(conn)
    if partner_ids is not None:
        query = query.filter(id__in=partner_ids)
    partners = await query.order_by("name")
    return await _states_for(rt, partners, at or rt.now(), conn)


async def concerned_by(purpose: str) -> list[str]:
    """Ids of the partners (any status) whose purpose is ``purpose``, or whose own consent
    purpose (``partner:<id>``) it is: the only grants a consent to ``purpose`` takes part in
    (``grant_for``). Asked on every consent change, whose common answer is none: one query
    over the (small) partners table, written out rather than built by the ORM, and read as a
    plain row (``api/platform/plain_reads.py``): on SQLite it must not queue on the writer
    connection behind the consent batches that the change has just left. The changes a batch
    commits ask at once, and share one read (``fetch_shared``): a partner is announced 30
    days before it is in force, so an answer one round trip old misses nothing."""
    prefix, _, rest = purpose.partition(":")
    own: str | None = None
    if prefix == "partner":
        try:
            own = str(uuid.UUID(rest))
        except ValueError:
            pass  # not a partner id: only the purpose column can match
    rows = await plain_reads.fetch_shared(Partner, _CONCERNED, purpose, own)
    return [str(r[0]) for r in rows]


_CONCERNED = 'SELECT "id" FROM "partners" WHERE "purpose" = $1 OR "id" = $2'


async def state(rt: Runtime, partner_id: str, at: datetime | None = None,
                conn: BaseDBAsyncClient | None = None) -> PartnerState:
    found = await states(rt, at, partner_ids=[_uuid(partner_id)], conn=conn)
    if not found:
        raise NotFound("partner not found")
    return found[0]


async def upcoming(rt: Runtime, partner_ids: list[str]) -> dict[str, list[PartnerChange]]:
    """Announced changes not yet in force, per partner, soonest first."""
    out: dict[str, list[PartnerChange]] = {pid: [] for pid in partner_ids}
    if partner_ids:
        rows = await PartnerChange.filter(partner_id__in=partner_ids,
                                          effective_at__gt=rt.now()).order_by("effective_at")
        for c in rows:
            out[str(c.partner_id)].append(c)
    return out


async def adapter_config(rt: Runtime, partner_id: str) -> dict[str, Any]:
    """The partner's adapter config, decrypted: for delivery only, never for an API answer."""
    row = await Partner.get_or_none(id=partner_id)
    if row is None:
        raise NotFound("partner not found")
    if row.config_ct is None:
        return {}
    config: dict[str, Any] = json.loads(open_sealed(rt.keys, _config_label(str(row.id)), row.config_ct))
    return config


# --- writes ----------------------------------------------------------------------------------

def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound("partner not found") from None


def _check_fields(fields: Iterable[PersonalField], optional: Iterable[PersonalField],
                  accepts: frozenset[PersonalField], adapter: str
                  ) -> tuple[frozenset[PersonalField], frozenset[PersonalField]]:
    f, o = frozenset(PersonalField(x) for x in fields), frozenset(PersonalField(x) for x in optional)
    if f & o:
        raise BadInput("a field cannot be both required and optional", field="optionalFields")
    if not f and not o:
        raise BadInput("a partner needs at least one field", field="fields")
    for name, values in (("fields", f), ("optionalFields", o)):
        beyond = values - accepts
        if beyond:
            raise BadInput(f"adapter '{adapter}' cannot take {', '.join(_as_list(beyond))}",
                           field=name)
    return f, o


def _effective(now: datetime, requested: datetime | None) -> datetime:
    """When an ADDED or widening change takes effect: 30 days on, or a later date asked for."""
    earliest = now + timedelta(days=ANNOUNCE_DAYS)
    if requested is None:
        return earliest
    if requested.tzinfo is None or requested.utcoffset() is None:
        raise BadInput("effectiveAt needs an explicit UTC offset", field="effectiveAt")
    if requested < earliest:
        raise BadInput(f"a new partner or a widening takes effect no sooner than {ANNOUNCE_DAYS} "
                       f"days after its announcement ({earliest.isoformat()})",
                       field="effectiveAt")
    return requested.astimezone(UTC)


async def _notify(rt: Runtime, conn: BaseDBAsyncClient, partner_name: str,
                  kind: PartnerChangeKind, effective_at: datetime) -> None:
    words = {PartnerChangeKind.ADDED: "will start receiving data",
             PartnerChangeKind.FIELDS_WIDENED: "will receive more of your data",
             PartnerChangeKind.FIELDS_NARROWED: "now receives less of your data",
             PartnerChangeKind.RETIRED: "no longer receives your data"}[kind]
    await notifications.announce_to_members(
        rt, conn, kind="partner.changed", subject=f"Outsourcing partner change: {partner_name}",
        body=(f"Our outsourcing partner {partner_name} {words} from "
              f"{effective_at.date().isoformat()}. See the partner list for details."
              + (f" What it would receive about you, and how to object before then: "
                 f"{rt.settings.public_url.rstrip('/')}/account/#upcoming"
                 if kind in (PartnerChangeKind.ADDED, PartnerChangeKind.FIELDS_WIDENED)
                 else "")))


async def _create_change(conn: BaseDBAsyncClient, partner_id: str, kind: PartnerChangeKind,
                         now: datetime, effective_at: datetime, fields: Iterable[PersonalField],
                         optional: Iterable[PersonalField]) -> PartnerChange:
    return await PartnerChange.create(id=uuid.uuid4(), partner_id=partner_id, kind=kind,
                                      announced_at=now, effective_at=effective_at,
                                      fields_=_as_list(fields), optional_fields=_as_list(optional),
                                      using_db=conn)


async def announce(rt: Runtime, actor: str, *, name: str, kind: PartnerKind, purpose: str,
                   adapter: str, config: Any, fields: Iterable[PersonalField],
                   optional_fields: Iterable[PersonalField],
                   effective_at: datetime | None = None) -> ChangeResult:
    name = (name or "").strip()
    if not name or len(name) > _NAME_MAX or any(ord(ch) < 32 for ch in name):
        raise BadInput(f"name must be 1 to {_NAME_MAX} printable characters", field="name")
    purpose = (purpose or "").strip()
    basis = await purpose_basis(purpose)
    if basis is None:
        raise BadInput("purpose must name a registered purpose", field="purpose")
    if purpose.startswith("partner:") or basis not in _SERVED_BASES:
        raise BadInput("a partner's purpose must rest on CONTRACT or CONSENT", field="purpose")
    accepts = await _validate_adapter(rt, adapter, config)
    f, o = _check_fields(fields, optional_fields, accepts, adapter)
    now = rt.now()
    partner_id = str(uuid.uuid4())
    effective = _effective(now, effective_at)
    try:
        async with in_transaction("default") as conn:
            partner = await Partner.create(
                id=partner_id, name=name, kind=PartnerKind(kind), purpose=purpose, adapter=adapter,
                config_ct=seal(rt.keys, _config_label(partner_id),
                               json.dumps(config or {}).encode()),
                created_at=now, using_db=conn)
            change = await _create_change(conn, partner_id, PartnerChangeKind.ADDED, now,
                                          effective, f, o)
            await purposes.register_partner_purpose(conn, partner_id, name)
            await _notify(rt, conn, name, PartnerChangeKind.ADDED, effective)
            await audit.record(rt, actor, "partner.announce", partner_id,
                               {"change": str(change.id), "adapter": adapter, "purpose": purpose,
                                "fields": _as_list(f), "optionalFields": _as_list(o),
                                "effectiveAt": effective.isoformat()}, using=conn)
    except IntegrityError:
        raise Conflict("a partner with this name already exists") from None
    return ChangeResult(change, state_from(partner, [change], now, accepts, basis))


async def _locked_partner(conn: BaseDBAsyncClient, partner_id: str) -> Partner:
    query = Partner.filter(id=_uuid(partner_id)).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    partner = await query.first()
    if partner is None:
        raise NotFound("partner not found")
    return partner


def _trim(change: PartnerChange, keep: frozenset[PersonalField],
          keep_optional: frozenset[PersonalField]) -> bool:
    """Narrow a pending change to what a narrowing keeps; True when it changed."""
    f, o = _field_set(change.fields_), _field_set(change.optional_fields)
    new_f = f & keep
    new_o = (o & (keep | keep_optional)) | (f & keep_optional)
    new_o -= new_f
    if (new_f, new_o) == (f, o):
        return False
    change.fields_, change.optional_fields = _as_list(new_f), _as_list(new_o)
    return True


async def change_fields(rt: Runtime, actor: str, partner_id: str,
                        fields: Iterable[PersonalField],
                        optional_fields: Iterable[PersonalField],
                        effective_at: datetime | None = None) -> ChangeResult:
    """Widen (in force ``effective_at``, 30 days at the soonest) or narrow (at once)."""
    now = rt.now()
    async with in_transaction("default") as conn:
        partner = await _locked_partner(conn, partner_id)
        pid = str(partner.id)
        current = (await _states_for(rt, [partner], now, conn))[0]
        if current.status == PartnerStatus.RETIRED:
            raise Conflict("this partner is retired")
        f, o = _check_fields(fields, optional_fields, current.accepts, partner.adapter)
        if (f, o) == (current.fields, current.optional_fields):
            raise BadInput("these are already the partner's fields", field="fields")
        reachable = current.fields | current.optional_fields
        widening = bool(f - current.fields) or bool(o - reachable)
        changes = (await _changes_by_partner([pid], conn))[pid]
        if widening:
            kind, effective = PartnerChangeKind.FIELDS_WIDENED, _effective(now, effective_at)
        else:
            if effective_at is not None and effective_at != now:
                raise BadInput("a narrowing takes effect at once: leave effectiveAt out",
                               field="effectiveAt")
            kind, effective = PartnerChangeKind.FIELDS_NARROWED, now
            for pending in (c for c in changes if c.effective_at > now):
                if _trim(pending, f, o):
                    await pending.save(using_db=conn,
                                       update_fields=["fields_", "optional_fields"])
        change = await _create_change(conn, pid, kind, now, effective, f, o)
        await _notify(rt, conn, partner.name, kind, effective)
        await audit.record(rt, actor, "partner.change_fields", pid,
                           {"change": str(change.id), "kind": kind.value, "fields": _as_list(f),
                            "optionalFields": _as_list(o), "effectiveAt": effective.isoformat()},
                           using=conn)
        after = state_from(partner, [*changes, change], now, current.accepts,
                           current.legal_basis)
    return ChangeResult(change, after)


async def retire(rt: Runtime, actor: str, partner_id: str) -> ChangeResult:
    now = rt.now()
    async with in_transaction("default") as conn:
        partner = await _locked_partner(conn, partner_id)
        pid = str(partner.id)
        if partner.retired_at is not None:
            raise Conflict("this partner is already retired")
        current = (await _states_for(rt, [partner], now, conn))[0]
        partner.retired_at = now
        await partner.save(using_db=conn, update_fields=["retired_at"])
        change = await _create_change(conn, pid, PartnerChangeKind.RETIRED, now, now,
                                      current.fields, current.optional_fields)
        await _notify(rt, conn, partner.name, PartnerChangeKind.RETIRED, now)
        await audit.record(rt, actor, "partner.retire", pid, {"change": str(change.id)},
                           using=conn)
        changes = (await _changes_by_partner([pid], conn))[pid]
    return ChangeResult(change, state_from(partner, changes, now, current.accepts,
                                           current.legal_basis))
