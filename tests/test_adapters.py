"""Adapter discovery (entry points, duplicates, allow-list), config checks and the minimized
event record every adapter receives."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from api.core.errors import BadInput
from api.platform.runtime import Runtime
from api.service.composition import with_settings
from api.sharing.adapters import (
    adapter_infos,
    available_adapters,
    get_adapter_class,
    make_adapter,
    refresh,
    validate_config,
)
from partners.base import PartnerAdapter, PartnerEvent, SharedMember
from partners.jsonl import JsonlAdapter
from partners.webhook import WebhookAdapter, sign, signing_key


def fake_distribution(root: Path, name: str, entries: dict[str, str]) -> Path:
    """A real installed distribution (dist-info with entry points) in ``root``."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[consentry.partners]\n{lines}")
    return root


def with_allow_list(rt: Runtime, *names: str) -> Runtime:
    return with_settings(rt, partner_allow_list=names)


async def test_builtins_are_discovered_through_the_entry_point_group(rt) -> None:
    infos = adapter_infos(rt)
    assert {"jsonl", "webhook", "recording"} <= set(infos)
    assert infos["jsonl"].cls is JsonlAdapter and infos["webhook"].cls is WebhookAdapter
    assert infos["jsonl"].distribution == "consentry"
    assert infos["webhook"].target == "partners.webhook:WebhookAdapter"
    assert get_adapter_class(rt, "jsonl") is JsonlAdapter


async def test_unknown_adapter_is_bad_input(rt) -> None:
    with pytest.raises(BadInput, match="no partner adapter named 'ftp' is installed"):
        get_adapter_class(rt, "ftp")


async def test_a_name_claimed_by_two_distributions_is_rejected(rt, tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, "evil-jsonl",
                                                      {"jsonl": "partners.recording:RecordingAdapter"})))
    refresh(rt)
    with pytest.raises(BadInput) as caught:
        get_adapter_class(rt, "jsonl")
    assert "several distributions (consentry, evil-jsonl)" in caught.value.message
    assert "jsonl" not in available_adapters(rt)
    assert get_adapter_class(rt, "webhook") is WebhookAdapter  # the others are unaffected


async def test_broken_or_mislabelled_plugins_are_rejected_alone(rt, tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, "odd-plugins", {
        "broken": "no_such_module_anywhere:Adapter",
        "notadapter": "json:loads",
        "alias": "partners.jsonl:JsonlAdapter",
    })))
    refresh(rt)
    with pytest.raises(BadInput, match="failed to import"):
        get_adapter_class(rt, "broken")
    with pytest.raises(BadInput, match="not a partners.base.PartnerAdapter subclass"):
        get_adapter_class(rt, "notadapter")
    with pytest.raises(BadInput, match="entry point says 'alias'"):
        get_adapter_class(rt, "alias")
    assert {"jsonl", "webhook", "recording"} <= set(available_adapters(rt))


async def test_allow_list_limits_which_adapters_may_be_used(rt) -> None:
    limited = with_allow_list(rt, "webhook")
    assert set(available_adapters(limited)) == {"webhook"}
    with pytest.raises(BadInput, match="not in the allow-list"):
        get_adapter_class(limited, "jsonl")
    assert get_adapter_class(limited, "webhook") is WebhookAdapter


@pytest.mark.parametrize(("name", "config", "message"), [
    ("jsonl", {}, "'directory'"),
    ("jsonl", {"directory": ""}, "'directory'"),
    ("jsonl", {"directory": "../elsewhere"}, "'..'"),
    ("jsonl", {"directory": "C:\\elsewhere"}, "'/' separators"),
    ("webhook", {"url": "https://partner.example/hook"}, "'secret'"),
    ("webhook", {"url": "ftp://partner.example", "secret": "s3cret-value"}, "http(s) URL"),
    ("webhook", {"url": "https://partner.example/hook", "secret": "whsec_***not base64***"},
     "'whsec_' followed by base64"),
    ("recording", {"fail": -1}, "non-negative"),
])
async def test_bad_adapter_config_is_bad_input_without_echoing_it(rt, name, config, message) -> None:
    with pytest.raises(BadInput) as caught:
        validate_config(rt, name, config)
    assert message in caught.value.message and caught.value.extensions["field"] == "config"
    assert "s3cret-value" not in caught.value.message and "***" not in caught.value.message


async def test_good_config_builds_an_adapter(rt, tmp_path) -> None:
    adapter = make_adapter(rt, "webhook", {"url": "https://partner.example/hook",
                                           "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    assert isinstance(adapter, WebhookAdapter) and "whsec" not in repr(adapter)
    assert isinstance(make_adapter(rt, "jsonl", {"directory": "parcel"}), JsonlAdapter)
    with pytest.raises(BadInput):
        validate_config(rt, "jsonl", ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_webhook_signature_matches_the_standard_webhooks_reference_vector() -> None:
    key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_shared_member_holds_only_the_fields_it_is_built_with_and_is_read_only() -> None:
    """Which fields are granted is the bridge's decision (tests/test_delivery.py); the record
    itself has no slot for a field it was not given."""
    member = SharedMember.of({"ref": "m_1", "address": "1 Road", "fullName": "Alice"})
    assert member.fields == ("ref", "address", "fullName")
    assert (member.address, member["fullName"], "email" in member) == ("1 Road", "Alice", False)
    with pytest.raises(AttributeError):
        _ = member.email
    with pytest.raises(KeyError):
        _ = member["email"]
    with pytest.raises(AttributeError):
        member.ref = "m_2"
    with pytest.raises(AttributeError):
        del member.address
    with pytest.raises(AttributeError):
        _ = member.__dict__
    with pytest.raises(ValueError, match="unknown member field"):
        SharedMember.of({"ref": "m_1", "password": "x"})
    with pytest.raises(ValueError, match="ref"):
        SharedMember.of({"fullName": "Alice"})
    assert "Alice" not in repr(member)


def test_partner_event_is_frozen_and_serializes_to_the_contract_shape() -> None:
    event = PartnerEvent(id="e1", type="member.updated", partner="Parcel Co",
                         at="2026-01-01T00:00:00Z", member=SharedMember.of({"ref": "m_1", "phone": "+1"}))
    assert json.loads(event.to_json()) == {"id": "e1", "type": "member.updated", "partner": "Parcel Co",
                                           "at": "2026-01-01T00:00:00Z",
                                           "member": {"ref": "m_1", "phone": "+1"},
                                           "fields": ["phone"]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.partner = "Other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown event type"):
        PartnerEvent(id="e2", type="member.sold", partner="p", at="x", member=event.member)


def test_adapter_base_checks_config_on_construction() -> None:
    class Minimal(PartnerAdapter):
        name = "minimal"
        accepts = frozenset({"fullName"})

        async def deliver(self, event: PartnerEvent) -> None:
            return None

    assert Minimal({"anything": 1}).config == {"anything": 1}
    with pytest.raises(ValueError, match="must be an object"):
        Minimal(["no"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PartnerAdapter({})  # type: ignore[abstract]
