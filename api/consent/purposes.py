"""The purposes registry: what member data may be processed for, and on which legal basis.

Built-in purposes are defined here in code (so a lookup never depends on seeded rows) and
mirrored into the ``purposes`` table lazily, idempotently, the first time a service needs the
list. Partners add ``partner:<id>`` purposes (basis CONSENT) through
:func:`register_partner_purpose`, inside the partners' own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from api.models.consent import Purpose
from api.models.enums import LegalBasis
from api.platform.runtime import Runtime

__all__ = ["PurposeView", "BUILTIN", "ensure_builtin_purposes", "get_purpose", "list_purposes",
           "register_partner_purpose", "partner_purpose_name"]

_SEEDED = "purposes.seeded"


@dataclass(frozen=True)
class PurposeView:
    name: str
    description: str
    legal_basis: LegalBasis
    required: bool
    partner_id: str | None = None

    @property
    def needs_consent(self) -> bool:
        return self.legal_basis == LegalBasis.CONSENT


BUILTIN: dict[str, PurposeView] = {p.name: p for p in (
    PurposeView("membership", "Running your membership: your account, sign-in and the "
                "records the clinic must keep about members.", LegalBasis.CONTRACT, True),
    PurposeView("order_fulfillment", "Processing, delivering and invoicing what you buy, "
                "with the partners that fulfil orders.", LegalBasis.CONTRACT, False),
    PurposeView("marketing", "Sending you news and offers from the clinic.",
                LegalBasis.CONSENT, False),
    PurposeView("personalization", "Tailoring content and recommendations to you.",
                LegalBasis.CONSENT, False),
    PurposeView("health_data", "Processing health information you give us (sensitive data, "
                "Art. 2): needs its own specific consent.", LegalBasis.CONSENT, False),
    PurposeView("research", "Using pseudonymized data for clinical research.",
                LegalBasis.CONSENT, False),
)}


def partner_purpose_name(partner_id: str) -> str:
    return f"partner:{partner_id}"


def _view(row: Purpose) -> PurposeView:
    return PurposeView(row.name, row.description, LegalBasis(row.legal_basis), row.required,
                       str(row.partner_id) if row.partner_id else None)


async def ensure_builtin_purposes(rt: Runtime) -> None:
    """Insert missing built-ins in autocommit (safe to race: a duplicate insert is ignored).

    Remembered per runtime, so it costs one query per process, not per request.
    """
    if rt.extras.get(_SEEDED):
        return
    # flat=True yields the names themselves; tortoise types every values_list as tuples.
    names = cast(list[str], await Purpose.filter(name__in=list(BUILTIN)).values_list("name", flat=True))
    present = set(names)
    for view in BUILTIN.values():
        if view.name in present:
            continue
        try:
            await Purpose.create(name=view.name, description=view.description,
                                 legal_basis=view.legal_basis, required=view.required)
        except IntegrityError:
            pass  # another request seeded it first
    rt.extras[_SEEDED] = True


async def get_purpose(name: str, conn: BaseDBAsyncClient | None = None) -> PurposeView | None:
    """A purpose by name: built-ins from code, partner purposes from the table."""
    if name in BUILTIN:
        return BUILTIN[name]
    if not 0 < len(name) <= 80 or not name.isprintable():
        return None  # cannot be a registered name (and NUL would upset PostgreSQL)
    row = await Purpose.get_or_none(name=name, using_db=conn)
    return _view(row) if row else None


async def list_purposes(rt: Runtime) -> list[PurposeView]:
    """Built-ins first (in their fixed order), then the other registered purposes by name."""
    await ensure_builtin_purposes(rt)
    rows = await Purpose.exclude(name__in=list(BUILTIN)).order_by("name")
    return list(BUILTIN.values()) + [_view(r) for r in rows]


async def register_partner_purpose(conn: BaseDBAsyncClient | None, partner_id: str,
                                   name: str) -> str:
    """Create (or refresh the description of) ``partner:<id>``; returns the purpose name.

    ``name`` is the partner's display name, used only in the description.
    """
    purpose = partner_purpose_name(str(partner_id))
    description = (f"Sharing your optional fields with {name}, an outsourcing partner "
                   "(only while you consent).")
    updated = await Purpose.filter(name=purpose).using_db(conn).update(description=description)
    if not updated:
        await Purpose.create(name=purpose, description=description,
                             legal_basis=LegalBasis.CONSENT, required=False,
                             partner_id=partner_id, using_db=conn)
    return purpose
