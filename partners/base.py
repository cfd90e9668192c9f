"""The partner adapter plugin contract (the only module a third-party adapter needs).

An adapter is a class with a ``name``, the personal fields it ``accepts`` (GraphQL names) and
one ``async deliver(event)``. It is built with its decrypted config dict and may check that
config in ``validate_config`` (its shape) and ``check_config`` (what depends on where Consentry
runs: the :class:`Deployment`, which Consentry sets, never the admin). It receives a
:class:`PartnerEvent` whose ``member`` holds only the fields granted to this partner for this
member now: the record is built from a class with exactly those slots, so reading any other
field raises ``AttributeError`` (not ``None``). Every event names the ``fields`` it concerns.
Optional: ``confirm`` (the partner carried out deletion events) and ``pushes = False``
(a pull-only partner: events wait for it in ``partnerEvents``; :class:`PullOnly`).
Nothing in here reaches the ORM, a database session or a key.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

__all__ = [
    "PERSONAL_FIELDS",
    "DELETION_EVENTS",
    "DeliveryError",
    "Deployment",
    "PartnerAdapter",
    "PartnerEvent",
    "PullOnly",
    "SharedMember",
    "VALUELESS_EVENTS",
]

# Personal fields by their GraphQL names (the contract's PersonalField enum).
PERSONAL_FIELDS = frozenset({"userId", "email", "fullName", "dateOfBirth", "phone", "address"})
EVENT_TYPES = frozenset({"member.shared", "member.updated", "member.correction", "member.erasure",
                         "member.revoked", "member.restricted"})
# Events that carry no value, only the ref and the fields concerned: delivered even though the
# member no longer has a grant (that is what they announce). Erasure and revocation are
# deletion events: the partner must delete ``fields`` and may ``confirm`` it.
VALUELESS_EVENTS = frozenset({"member.erasure", "member.revoked", "member.restricted"})
DELETION_EVENTS = frozenset({"member.erasure", "member.revoked"})


class DeliveryError(Exception):
    """A failed delivery whose message is safe to store: no personal values, no secrets.

    Delivery records the message of this exception in the attempt log; for any other
    exception it records only the exception's class name.
    """


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where Consentry runs, as far as an adapter needs to know; set by Consentry on every
    adapter it builds. The defaults are the strictest, so an adapter built any other way
    behaves as in production."""

    production: bool = True
    allow_private_networks: bool = False  # private (RFC 1918, ULA) receivers: on-premises only
    files_root: str = ""  # the only directory tree file-writing adapters may write in


class SharedMember:
    """A read-only member record holding only ``ref`` and the granted fields.

    Instances come from :meth:`of`, which builds (and caches) one subclass per set of field
    names with exactly those ``__slots__``: a field that was not granted has no slot, so it
    cannot be read, set or smuggled in.
    """

    __slots__ = ()
    fields: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    def of(values: Mapping[str, Any]) -> SharedMember:
        if "ref" not in values:
            raise ValueError("a shared member needs its partner ref")
        cls = _record_class(("ref", *sorted(name for name in values if name != "ref")))
        record = object.__new__(cls)
        for name in cls.fields:
            object.__setattr__(record, name, values[name])
        return record

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a shared member record is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a shared member record is read-only")

    def __getitem__(self, name: str) -> Any:
        if name not in self.fields:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedMember) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items())))

    def __repr__(self) -> str:  # names only: personal values never reach logs through repr
        return f"SharedMember(fields={list(self.fields)})"

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.fields}


@lru_cache(maxsize=128)
def _record_class(names: tuple[str, ...]) -> type[SharedMember]:
    for name in names:
        if name != "ref" and name not in PERSONAL_FIELDS:
            raise ValueError(f"unknown member field {name!r}")
    return type("SharedMember", (SharedMember,), {"__slots__": names, "fields": names})


@dataclass(frozen=True, slots=True)
class PartnerEvent:
    """One event for one partner: ``{"id", "type", "partner", "at", "member", "fields"}``.

    ``fields`` (GraphQL names) are what the event concerns: the fields shared, updated or
    corrected (exactly the ones in ``member``), or, for ``member.erasure``, ``member.revoked``
    and ``member.restricted``, the fields to delete or to stop using (``member`` then holds
    only ``ref``)."""

    id: str
    type: str
    partner: str
    at: str  # ISO 8601, UTC
    member: SharedMember
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}")
        if not self.fields and self.type not in VALUELESS_EVENTS:
            # a value-carrying event concerns exactly the fields it holds
            object.__setattr__(self, "fields", tuple(f for f in self.member.fields if f != "ref"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "partner": self.partner, "at": self.at,
                "member": self.member.to_dict(), "fields": list(self.fields)}

    def to_json(self) -> str:
        """The contract JSON, compact, keys in a stable order."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def __repr__(self) -> str:
        return f"PartnerEvent(id={self.id!r}, type={self.type!r}, partner={self.partner!r})"


class PartnerAdapter(ABC):
    """Base class of every partner adapter plugin.

    Subclasses set ``name`` (the entry-point name under ``consentry.partners``) and
    ``accepts`` (GraphQL names of the personal fields the adapter can take; the registry
    never grants more). ``deliver`` raises to signal failure; delivery retries with backoff.
    Adapters holding resources (HTTP sessions, files) release them in ``aclose``.
    ``test_only`` adapters (fakes) are refused in production. ``deployment`` is set by Consentry
    right after construction (so a plugin's one-argument constructor keeps working).
    ``pushes = False`` marks a pull-only adapter: ``deliver`` is never called, the partner reads
    its events with ``partnerEvents``. An adapter that can tell whether the receiver carried
    out deletion events overrides ``confirm``.
    """

    name: ClassVar[str]
    accepts: ClassVar[frozenset[str]] = frozenset()
    test_only: ClassVar[bool] = False
    pushes: ClassVar[bool] = True
    deployment: Deployment = Deployment()

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.validate_config(config)
        self.config = dict(config)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` with a message safe to show (never echo secret values)."""
        if not isinstance(config, Mapping):
            raise ValueError("adapter config must be an object")

    @classmethod
    async def check_config(cls, config: Mapping[str, Any], deployment: Deployment) -> None:
        """Checks at announcement that depend on the deployment or need I/O (a DNS lookup);
        raise ``ValueError`` like ``validate_config``. Runs after ``validate_config``."""
        return None

    @abstractmethod
    async def deliver(self, event: PartnerEvent) -> None:
        """Deliver one event; raise (ideally :class:`DeliveryError`) on failure."""

    async def confirm(self, event_ids: Sequence[str]) -> Sequence[str]:
        """Optional: of these delivered deletion events (``member.erasure``, ``member.revoked``),
        the ids the receiver has confirmed carrying out. Called by the ``deletion_duties`` job
        with ids of events this adapter delivered and that are still unconfirmed; ids it does
        not know are ignored. Raise to mean "cannot tell now" (asked again next run). The
        default confirms nothing: the partner confirms with ``confirmDeletion`` instead."""
        return ()

    async def aclose(self) -> None:
        """Release resources held by this instance."""
        return None

    async def __aenter__(self) -> PartnerAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PullOnly(PartnerAdapter):
    """The ``pull`` adapter: a partner that takes no pushes and reads ``partnerEvents``."""

    name = "pull"
    accepts = PERSONAL_FIELDS
    pushes = False

    async def deliver(self, event: PartnerEvent) -> None:
        raise DeliveryError("a pull-only partner takes no pushes")


def require_keys(config: Mapping[str, Any], *keys: str) -> None:
    """Shared config check: every key present as a non-empty string."""
    if not isinstance(config, Mapping):
        raise ValueError("adapter config must be an object")
    for key in keys:
        value = config.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"adapter config needs a non-empty string {key!r}")
