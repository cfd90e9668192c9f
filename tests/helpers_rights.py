"""Test data and instruments for the data-rights tests: partners with a disclosure history,
purchases, a real SMTP server (aiosmtpd) and byte scans of every store."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from tortoise import Tortoise, connections

from api.members.records import data_key
from api.models.enums import LegalBasis, PartnerKind
from api.models.member import Member
from api.models.partner import Partner, Purchase
from api.platform.runtime import Runtime
from api.sharing import ledger as disclosures


async def make_partner(rt: Runtime, name: str, purpose: str = "order_fulfillment") -> Partner:
    return await Partner.create(id=uuid.uuid4(), name=name, kind=PartnerKind.LOGISTICS,
                                purpose=purpose, adapter="recording", created_at=rt.now())


async def disclose(rt: Runtime, partner: Partner, member_id: str, fields: list[str],
                   basis: str = "CONTRACT") -> None:
    """A ledger entry as if ``partner`` had received these fields of the member."""
    await disclosures.write(None, [disclosures.Entry(
        member_id, str(partner.id), partner.name, fields, partner.purpose, LegalBasis(basis),
        "push", rt.now())])


async def add_purchase(rt: Runtime, member_id: str, reference: str, at: datetime | None = None,
                       amount: str = "42.00") -> str:
    """A purchase row as the purchases service writes it (reference under the member key)."""
    key = await data_key(rt, member_id)
    pid = uuid.uuid4()
    label = "purchase_reference"  # the label api.sharing.purchases writes references under
    await Purchase.create(id=pid, member_id=member_id, amount=amount, currency="EUR",
                          reference_ct=key.encrypt(label, reference), at=at or rt.now())
    await Member.filter(id=member_id).update(has_purchase=True)
    return str(pid)


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook name
        msg = message_from_bytes(envelope.content)
        msg["X-Rcpt"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Smtp:
    handler: _Collect
    port: int

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    handler = _Collect()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def mail_rt(rt: Runtime, smtp: Smtp) -> Runtime:
    """The test runtime, its settings pointing at the test SMTP server."""
    rt.settings = dataclasses.replace(rt.settings, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                      smtp_tls="none")
    return rt


def _sqlite_files(url: str) -> list[Path]:
    path = Path(url.removeprefix("sqlite://"))
    return [p for p in (path, Path(f"{path}-wal")) if p.exists()]


def _read_elsewhere(path: Path) -> bytes:
    """The file's bytes, read by another process: closing a descriptor of an SQLite file in
    this process would drop the POSIX locks our own connection holds on it."""
    return subprocess.run(["cat", str(path)], check=True, capture_output=True).stdout


async def store_dump(rt: Runtime) -> bytes:
    """Everything at rest, as bytes: the SQLite files (with WAL) or, on PostgreSQL, every row
    of every table of both stores as text (bytea rendered as hex)."""
    out = b""
    for name, app in (("default", "models"), ("vault", "vault")):
        conn = connections.get(name)
        if conn.capabilities.dialect == "sqlite":
            url = rt.settings.main_url if name == "default" else rt.settings.vault_url
            for path in _sqlite_files(url):
                out += _read_elsewhere(path)
        else:
            for model in Tortoise.apps[app].values():
                table = model._meta.db_table
                _, rows = await conn.execute_query(f'SELECT t::text AS row FROM "{table}" t')
                out += "\n".join(r["row"] for r in rows).encode()
    return out


def contains(dump: bytes, blob: bytes | str) -> bool:
    """Whether the plaintext or binary value occurs in the dump, raw or as PostgreSQL hex."""
    raw = blob.encode() if isinstance(blob, str) else bytes(blob)
    return raw in dump or raw.hex().encode() in dump


async def announce(rt: Runtime, name: str, fields: list[str], bucket: str,
                   purpose: str = "order_fulfillment") -> str:
    """A partner announced through the registry (in force 30 days later), recording adapter."""
    from api.models.enums import PersonalField
    from api.sharing import registry as partners_registry

    result = await partners_registry.announce(
        rt, "admin:test", name=name, kind=PartnerKind.LOGISTICS, purpose=purpose,
        adapter="recording", config={"bucket": bucket},
        fields=[PersonalField(f) for f in fields], optional_fields=[])
    return str(result.change.partner_id)


async def partner_token(rt: Runtime, partner_id: str) -> str:
    """Real credentials, and the token the ``/oauth/token`` endpoint would mint for them
    (minted directly: the endpoint has its own tests)."""
    from api.members.sessions import access_token_for
    from api.security.tokens import Principal
    from api.sharing.oauth import issue_credentials

    creds = await issue_credentials(rt, "admin:test", partner_id, ["members:read"])
    return access_token_for(rt, Principal("PARTNER", partner_id, ("members:read",),
                                          creds.client_id), ttl=rt.settings.partner_token_ttl)


SHARED = "{ sharedMembers { edges { node { ref email fullName address } } } }"
