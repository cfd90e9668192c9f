"""Partner adapter discovery: every adapter, built-in or third-party, comes from the
``consentry.partners`` entry-point group, so installing a package is all it takes to add one.

A name claimed by two distributions is rejected (never silently shadowed); the allow-list
setting (``CONSENTRY_PARTNER_ADAPTERS``, empty = all) limits which discovered names may be used;
test-only adapters (the ``recording`` fake, or any class with ``test_only = True``) do not exist
in production. The registry is built once per runtime (``rt.extras``); :func:`refresh` rebuilds it.

Adapters are built only here (:func:`instantiate`), which hands each one its
:class:`~partners.base.Deployment` (production or not, private receivers allowed, the files
root): ``partners/`` never reads the settings itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from api.core.errors import BadInput
from api.platform.runtime import Runtime
from partners.base import PERSONAL_FIELDS, Deployment, PartnerAdapter

__all__ = [
    "GROUP",
    "AdapterInfo",
    "Registry",
    "available_adapters",
    "adapter_infos",
    "check_config",
    "deployment",
    "discover",
    "get_adapter_class",
    "instantiate",
    "make_adapter",
    "refresh",
    "validate_config",
]

GROUP = "consentry.partners"
_EXTRA = "partner_adapters"
# Built-in fakes, by entry-point target (a class may also say ``test_only = True`` itself).
_TEST_TARGETS = frozenset({"partners.recording:RecordingAdapter"})
log = logging.getLogger("consentry.adapters")


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    cls: type[PartnerAdapter]
    distribution: str  # the installed distribution that provides it
    target: str  # "module:Class" from the entry point


@dataclass
class Registry:
    adapters: dict[str, AdapterInfo] = field(default_factory=dict)
    # name -> why it cannot be used (claimed twice, failed to import, not an adapter)
    rejected: dict[str, str] = field(default_factory=dict)


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"] if dist is not None else None) or "unknown"


def discover(eps: Iterable[EntryPoint] | None = None) -> Registry:
    """Load every adapter in the group. Problems reject the one name, never the others."""
    claims: dict[str, dict[str, EntryPoint]] = {}
    for ep in entry_points(group=GROUP) if eps is None else eps:
        # One distribution seen twice on sys.path is one claim, not a duplicate.
        claims.setdefault(ep.name, {}).setdefault(_dist_name(ep), ep)
    registry = Registry()
    for name, by_dist in sorted(claims.items()):
        if len(by_dist) > 1:
            registry.rejected[name] = (f"adapter {name!r} is provided by several distributions "
                                       f"({', '.join(sorted(by_dist))}); uninstall all but one")
            continue
        (dist, ep), = by_dist.items()
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            registry.rejected[name] = f"adapter {name!r} from {dist} failed to import ({type(exc).__name__})"
            continue
        problem = _check_class(name, cls)
        if problem:
            registry.rejected[name] = f"adapter {name!r} from {dist}: {problem}"
            continue
        registry.adapters[name] = AdapterInfo(name, cls, dist, ep.value)
    for reason in registry.rejected.values():
        log.error("%s", reason)
    return registry


def _check_class(name: str, cls: Any) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, PartnerAdapter)):
        return "not a partners.base.PartnerAdapter subclass"
    if getattr(cls, "name", None) != name:
        return f"class declares name {getattr(cls, 'name', None)!r}, entry point says {name!r}"
    accepts = getattr(cls, "accepts", None)
    if not isinstance(accepts, frozenset) or not accepts <= PERSONAL_FIELDS:
        return "accepts must be a frozenset of PersonalField GraphQL names"
    return None


def _registry(rt: Runtime) -> Registry:
    registry = rt.extras.get(_EXTRA)
    if registry is None:
        registry = rt.extras[_EXTRA] = discover()
    return registry


def refresh(rt: Runtime) -> Registry:
    """Rediscover (after installing or removing a plugin package in a running process)."""
    rt.extras.pop(_EXTRA, None)
    return _registry(rt)


def _allowed(rt: Runtime, name: str) -> bool:
    allow = rt.settings.partner_allow_list
    return not allow or name in allow


def _test_only(info: AdapterInfo) -> bool:
    return info.target in _TEST_TARGETS or bool(getattr(info.cls, "test_only", False))


def _usable(rt: Runtime, info: AdapterInfo) -> bool:
    return _allowed(rt, info.name) and not (rt.settings.production and _test_only(info))


def adapter_infos(rt: Runtime) -> dict[str, AdapterInfo]:
    """Usable adapters (discovered, not rejected, allowed, no fakes in production) with the
    distribution of each."""
    return {n: i for n, i in _registry(rt).adapters.items() if _usable(rt, i)}


def available_adapters(rt: Runtime) -> dict[str, type[PartnerAdapter]]:
    return {n: i.cls for n, i in adapter_infos(rt).items()}


def get_adapter_class(rt: Runtime, name: str) -> type[PartnerAdapter]:
    registry = _registry(rt)
    if name in registry.rejected:
        raise BadInput(registry.rejected[name], field="adapter")
    info = registry.adapters.get(name)
    if info is None:
        raise BadInput(f"no partner adapter named {name!r} is installed", field="adapter")
    if not _allowed(rt, name):
        raise BadInput(f"partner adapter {name!r} is not in the allow-list", field="adapter")
    if rt.settings.production and _test_only(info):
        raise BadInput(f"partner adapter {name!r} is for tests and does not run in production",
                       field="adapter")
    return info.cls


def validate_config(rt: Runtime, name: str, config: Mapping[str, Any]) -> type[PartnerAdapter]:
    """Check ``config`` for adapter ``name``; BadInput (never INTERNAL) when it is wrong."""
    cls = get_adapter_class(rt, name)
    if not isinstance(config, Mapping):
        raise BadInput("adapter config must be an object", field="config")
    try:
        cls.validate_config(config)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"invalid config for adapter {name!r}: {exc}", field="config") from exc
    return cls


async def check_config(rt: Runtime, name: str, config: Mapping[str, Any]) -> type[PartnerAdapter]:
    """Everything checked at announcement: the adapter is usable here, the config's shape, and
    what depends on the deployment (a webhook's addresses, a jsonl directory)."""
    cls = validate_config(rt, name, config)
    try:
        await cls.check_config(config, deployment(rt))
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"invalid config for adapter {name!r}: {exc}", field="config") from exc
    return cls


def deployment(rt: Runtime) -> Deployment:
    """What adapters may know of this deployment (they get nothing else of the settings)."""
    s = rt.settings
    return Deployment(production=s.production, allow_private_networks=s.webhook_private_allowed,
                      files_root=str(s.partner_files_root))


def instantiate(rt: Runtime, cls: type[PartnerAdapter], config: Mapping[str, Any]) -> PartnerAdapter:
    """Build an adapter of a class from :func:`get_adapter_class` (the one place that does)."""
    adapter = cls(config)
    adapter.deployment = deployment(rt)
    return adapter


def make_adapter(rt: Runtime, name: str, config: Mapping[str, Any]) -> PartnerAdapter:
    return instantiate(rt, validate_config(rt, name, config), config)
