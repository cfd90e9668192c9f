"""Security round 2, partner attacks (items 3, 4, 10, 11 of the issue).

Where the attack is an HTTP request (announcing a partner, an anonymous query), it runs against
a real ``consentry serve`` in production mode (its own data directory, production key files, an
admin made by ``consentry admin create``). Where the attacker acts outside the API (DNS that
changes after announcement, a symlink planted on disk, a row written before the fix), the real
delivery code runs in-process against real receivers and real files.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from api.core.errors import BadInput
from api.models.enums import OutboxStatus, PersonalField
from api.models.partner import OutboxEvent
from api.service.composition import with_settings
from api.sharing import adapters
from api.sharing import ledger as disclosures
from api.sharing.queue import deliver_due
from partners.recording import RecordingAdapter
from tests.conftest import PASSWORD
from tests.helpers_delivery import make_partner, queue
from tests.helpers_hardening import write_production_keys
from tests.helpers_serve import CONSENTRY, serve
from tests.receivers import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ANNOUNCE = """mutation($i: PartnerInput!) { announcePartner(input: $i) { partner { id } } }"""
PARTNERS = "{ partners { name adapter } }"


# --- a production server ---------------------------------------------------------------------

class Server:
    def __init__(self, url: str, admin: str, partner: str) -> None:
        self.url, self.admin, self.partner = url, admin, partner

    def post(self, query: str, variables: dict[str, Any] | None = None,
             token: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(f"{self.url}/graphql", headers=headers, timeout=30,
                              json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    def announce(self, name: str, adapter: str, config: dict[str, Any]) -> dict[str, Any]:
        return self.post(ANNOUNCE, {"i": {
            "name": name, "kind": "LOGISTICS", "purpose": "order_fulfillment",
            "adapter": adapter, "config": config, "fields": ["FULL_NAME", "ADDRESS"],
            "optionalFields": []}}, token=self.admin)


def _ok(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("attacks-partners")
    keys = write_production_keys(root / "keys")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(CONSENTRY_ENV="production", CONSENTRY_DATA_DIR=str(root / "data"),
               CONSENTRY_KEK_FILE=keys["kek_file"], CONSENTRY_SIGNING_KEY_FILE=keys["signing_key_file"],
               CONSENTRY_INDEX_KEY_FILE=keys["index_key_file"])
    done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", "attack-admin", "--email",
                           "attack-admin@clinic.example"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    otp = pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret
    with serve(env, root / "serve.log") as (url, proc):
        probe = Server(url, "", "")
        admin = _ok(probe.post(
            "mutation($u: String!, $p: String!, $o: String) { login(userId: $u, password: $p, "
            "otp: $o) { accessToken } }",
            {"u": "attack-admin", "p": PASSWORD, "o": pyotp.TOTP(otp).now()}))["login"]["accessToken"]
        probe.admin = admin
        # One honest partner (jsonl, a directory under the jsonl root) with a change still to
        # come, and a partner client for it.
        pid = _ok(probe.announce("ShipFast", "jsonl", {"directory": "shipfast"})
                  )["announcePartner"]["partner"]["id"]
        creds = _ok(probe.post(
            'mutation($p: ID!) { issuePartnerCredentials(partnerId: $p, scopes: ["members:read"])'
            " { clientId clientSecret } }", {"p": pid}, token=admin))["issuePartnerCredentials"]
        response = httpx.post(f"{url}/oauth/token", timeout=30, data={
            "grant_type": "client_credentials", "client_id": creds["clientId"],
            "client_secret": creds["clientSecret"]})
        assert response.status_code == 200, response.text
        yield Server(url, admin, response.json()["access_token"])
        assert proc.poll() is None, "the API process died"


def _refused(body: dict[str, Any]) -> tuple[str, str]:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("field", "")


# --- 3. webhook SSRF -------------------------------------------------------------------------

INTERNAL_URLS = [
    "http://partner.example/hook",  # plain http: member data in clear text
    "https://127.0.0.1/hook",
    "https://127.0.0.1:8000/graphql",
    "https://[::1]/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
    "https://0x7f000001/hook",
    "https://127.1/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://api.localhost/hook",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[fe80::1]/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",
    "https://[fd00::1]/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://255.255.255.255/hook",
]


def test_webhooks_to_internal_addresses_are_refused_at_announcement(server: Server) -> None:
    answers = {url: _refused(server.announce(f"Probe {i}", "webhook", {"url": url, "secret": SECRET}))
               for i, url in enumerate(INTERNAL_URLS)}
    assert answers == {url: ("BAD_USER_INPUT", "config") for url in INTERNAL_URLS}
    names = [p["name"] for p in _ok(server.post(PARTNERS, token=server.admin))["partners"]]
    assert not any(name.startswith("Probe") for name in names)
    # A public address is still fine.
    _ok(server.announce("Public Hook", "webhook", {"url": "https://93.184.216.34/hook",
                                                   "secret": SECRET}))


async def test_private_receivers_only_with_the_setting(rt) -> None:
    strict = with_settings(rt, env="production")
    on_prem = with_settings(rt, env="production", webhook_allow_private=True)
    config = {"url": "https://10.1.2.3/hook", "secret": SECRET}
    with pytest.raises(BadInput) as refused:
        await adapters.check_config(strict, "webhook", config)
    assert (refused.value.code, refused.value.extensions) == ("BAD_USER_INPUT", {"field": "config"})
    await adapters.check_config(on_prem, "webhook", config)
    for url in ("https://127.0.0.1/hook", "https://169.254.169.254/", "http://10.1.2.3/hook"):
        with pytest.raises(BadInput) as still:
            await adapters.check_config(on_prem, "webhook", {"url": url, "secret": SECRET})
        assert still.value.code == "BAD_USER_INPUT"


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A bare TCP listener on 127.0.0.1 that counts the connections it accepts."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    tcp = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield tcp.sockets[0].getsockname()[1], accepted
    finally:
        tcp.close()
        await tcp.wait_closed()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_delivery_checks_the_address_again_and_never_connects(rt, member, listener,
                                                                    host) -> None:
    # The row stands for a URL that looked public at announcement (DNS changed since, or it
    # was stored before the check existed): delivery resolves and checks again.
    port, accepted = listener
    prod = with_settings(rt, env="production")
    partner = await make_partner(prod, "Rebind Co", "webhook",
                                 {"url": f"https://{host}:{port}/hook", "secret": SECRET})
    await queue(prod, partner, member.id, {"fullName": "Alice Example"})
    stats = await deliver_due(prod)
    assert (stats["delivered"], stats["failed"]) == (0, 1)
    row = await OutboxEvent.get(partner_id=partner.id)
    assert row.last_error == "receiver address not allowed"
    assert accepted == []


async def test_attempt_errors_name_a_class_of_failure_not_the_receivers_answer(rt, member) -> None:
    async with WebhookReceiver("whsec_" + "QUJD" * 8) as receiver:  # another secret: 401
        teapot = await make_partner(rt, "Status Co", "webhook", {"url": receiver.url,
                                                                 "secret": SECRET})
        await queue(rt, teapot, member.id, {"fullName": "Alice Example"})
        await deliver_due(rt)
    assert receiver.bad_signatures == 1
    assert (await OutboxEvent.get(partner_id=teapot.id)).last_error == \
        "receiver answered an error status"
    gone = await make_partner(rt, "Closed Co", "webhook", {"url": receiver.url, "secret": SECRET})
    await queue(rt, gone, member.id, {"fullName": "Alice Example"})
    await deliver_due(rt)
    assert (await OutboxEvent.get(partner_id=gone.id)).last_error == "receiver refused"


# --- 4. jsonl writes anywhere ----------------------------------------------------------------

def test_jsonl_directories_outside_the_root_are_refused(server: Server) -> None:
    configs = [{"directory": "/srv/elsewhere"}, {"directory": "../../elsewhere"},
               {"directory": "a/../../elsewhere"}, {"directory": ".."},
               {"directory": "a/./../.."}, {"directory": "C:\\elsewhere"}]
    answers = [_refused(server.announce(f"Files {i}", "jsonl", c)) for i, c in enumerate(configs)]
    assert answers == [("BAD_USER_INPUT", "config")] * len(configs)


@pytest.fixture
def jsonl_world(rt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path]:
    monkeypatch.chdir(tmp_path)  # a relative directory must never mean "relative to the cwd"
    root = tmp_path / "root"
    return with_settings(rt, env="production", jsonl_root=str(root)), root


async def test_jsonl_writes_under_its_root_owner_only(jsonl_world, member) -> None:
    prod, root = jsonl_world
    partner = await make_partner(prod, "Parcel Co", "jsonl", {"directory": "parcel/in"})
    await queue(prod, partner, member.id, {"fullName": "Alice Example"})
    assert (await deliver_due(prod))["delivered"] == 1
    target = root / "parcel" / "in" / "Parcel_Co.jsonl"
    assert len(target.read_text().splitlines()) == 1
    assert target.stat().st_mode & 0o777 == 0o600


async def test_a_planted_symlink_file_is_not_followed(jsonl_world, member, tmp_path) -> None:
    prod, root = jsonl_world
    victim = tmp_path / "victim.txt"
    victim.write_text("original\n")
    (root / "parcel").mkdir(parents=True)
    (root / "parcel" / "Parcel_Co.jsonl").symlink_to(victim)
    partner = await make_partner(prod, "Parcel Co", "jsonl", {"directory": "parcel"})
    await queue(prod, partner, member.id, {"fullName": "Alice Example"})
    assert (await deliver_due(prod))["delivered"] == 0
    assert victim.read_text() == "original\n"


async def test_a_symlinked_directory_is_not_followed(jsonl_world, member, tmp_path) -> None:
    prod, root = jsonl_world
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir()
    (root / "parcel").symlink_to(elsewhere, target_is_directory=True)
    partner = await make_partner(prod, "Parcel Co", "jsonl", {"directory": "parcel/in"})
    await queue(prod, partner, member.id, {"fullName": "Alice Example"})
    assert (await deliver_due(prod))["delivered"] == 0
    assert list(elsewhere.iterdir()) == []


# --- 10. test-only adapters in production ----------------------------------------------------

def test_the_recording_adapter_is_refused_in_production(server: Server) -> None:
    body = server.announce("Recorder", "recording", {"bucket": "attack"})
    assert _refused(body) == ("BAD_USER_INPUT", "adapter")


async def test_the_recording_adapter_is_not_built_at_delivery_in_production(rt, member) -> None:
    prod = with_settings(rt, env="production")
    bucket = uuid.uuid4().hex
    partner = await make_partner(prod, "Recorder", "recording", {"bucket": bucket},
                                 fields=[PersonalField.FULL_NAME])
    await queue(prod, partner, member.id, {"fullName": "Alice Example"})
    assert (await deliver_due(prod))["delivered"] == 0
    assert RecordingAdapter.events(bucket) == []
    assert await disclosures.for_member(member.id) == []
    assert (await OutboxEvent.get(partner_id=partner.id)).status != OutboxStatus.DELIVERED


# --- 11. admin-only fields through public types ----------------------------------------------

REACH = "{ outsourcingPartners { name upcoming { partner { name adapter } } } }"


def test_anonymous_and_partner_callers_cannot_read_adapter_names(server: Server) -> None:
    for token in (None, server.partner):
        body = server.post(REACH, token=token)
        assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
        assert "jsonl" not in str(body.get("data"))
    public = server.post("{ outsourcingPartners { name upcoming { partner { name } } } }")
    assert {p["name"] for p in _ok(public)["outsourcingPartners"]} >= {"ShipFast"}
    admin = _ok(server.post(REACH, token=server.admin))["outsourcingPartners"]
    assert {"name": "ShipFast", "adapter": "jsonl"} in [
        c["partner"] for p in admin for c in p["upcoming"]]
