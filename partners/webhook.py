"""Built-in ``webhook`` adapter: POSTs each event as JSON, signed per Standard Webhooks.

Headers: ``webhook-id`` (the event id, the receiver's dedupe key), ``webhook-timestamp``
(Unix seconds, wall clock: receivers check it against their own clock to refuse replays) and
``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")). The key
is the base64 part of a ``whsec_...`` secret, or the secret's UTF-8 bytes otherwise.
Any non-2xx answer (redirects are not followed), timeout or connection error is a failure
(delivery retries); the stored error names the class of failure, never the receiver's answer.

Receivers are partners on the internet, so the URL is an SSRF risk: in production it must be
``https`` and no address it names or resolves to may be loopback, link-local (the cloud
metadata service), multicast, reserved or unspecified; private ranges only when the deployment
allows them (on-premises receivers). The check runs at announcement and again at every
connection: the connector's resolver checks every address it returns, and the connection goes
to exactly those checked addresses (Host and SNI stay the name), so DNS that changes after the
check (rebinding) gains nothing. Outside production loopback and private receivers are allowed
(local test receivers).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from partners.base import (
    PERSONAL_FIELDS,
    DeliveryError,
    Deployment,
    PartnerAdapter,
    PartnerEvent,
    require_keys,
)

__all__ = ["AddressRefused", "WebhookAdapter", "address_refusal", "literal_address", "signing_key",
           "sign"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 5.0
RESOLVE_TIMEOUT = 5.0  # at announcement; a name that does not resolve yet is checked at delivery
CONNECTIONS = 32  # matches the delivery concurrency

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Private ranges an on-premises receiver may use (with allow_private_networks): RFC 1918,
# shared address space (RFC 6598) and unique local IPv6.
_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Numeric hosts a resolver reads as IPv4 (2130706433, 0x7f000001, 127.1, 0177.0.0.1).
_LEGACY_V4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


class AddressRefused(OSError):
    """A receiver address the deployment does not allow (raised by the checking resolver)."""


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    return secret.encode("utf-8")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells out (legacy numeric IPv4 forms included), None for a name.
    Raises ``ValueError`` for a numeric host that is no address."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_V4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise ValueError("'url' has a malformed numeric host") from None
    return None


def _views(address: Address) -> list[Address]:
    """The address and every IPv4 address it carries (NAT64, 6to4, Teredo); an IPv4-mapped
    address is judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    out: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.sixtofour, *(address.teredo or ())]
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        out += [a for a in embedded if a is not None]
    return out


def address_refusal(address: Address, deployment: Deployment) -> str | None:
    """Why ``address`` may not be a receiver, or None when it may."""
    for a in _views(address):
        if a.is_unspecified or a.is_multicast or a.is_link_local or a.is_reserved:
            return "a link-local, multicast, reserved or unspecified address"
        if a.is_loopback:
            if deployment.production:
                return "a loopback address"
        elif any(a in net for net in _PRIVATE):
            if not deployment.allow_private_networks:
                return "a private address (see CONSENTRY_WEBHOOK_ALLOW_PRIVATE)"
        elif not a.is_global:
            return "a special-purpose address"
    return None


def _is_localhost(name: str) -> bool:
    name = name.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


class _CheckedResolver(AbstractResolver):
    """Resolves like the system does, then refuses the answer unless every address is allowed:
    the connector only ever connects to addresses this returned."""

    def __init__(self, deployment: Deployment) -> None:
        self._inner = ThreadedResolver()
        self._deployment = deployment

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if address_refusal(ipaddress.ip_address(result["host"]), self._deployment):
                raise AddressRefused("receiver address not allowed")
        return results

    async def close(self) -> None:
        await self._inner.close()


def _url_problem(url: str, deployment: Deployment) -> str | None:
    """What is wrong with ``url`` for this deployment without resolving it (None: nothing).
    Names are left to the resolver, except ``localhost`` names (refused at announcement)."""
    parts = urlsplit(url)
    if deployment.production and parts.scheme != "https":
        return "'url' must use https"
    host = parts.hostname or ""
    address = literal_address(host)
    refusal = address_refusal(address, deployment) if address is not None else None
    return f"'url' names {refusal}" if refusal else None


class WebhookAdapter(PartnerAdapter):
    name = "webhook"
    accepts = PERSONAL_FIELDS

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.url = str(config["url"])
        self._url = yarl.URL(self.url)  # parsed once, not per request
        self._key = signing_key(str(config["secret"]))
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # the secret never shows up in logs
        return f"WebhookAdapter(url={self.url!r})"

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require_keys(config, "url", "secret")
        url = urlsplit(config["url"])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("'url' must be an absolute http(s) URL")
        try:
            if not signing_key(config["secret"]):
                raise ValueError("'secret' is empty")
        except (binascii.Error, ValueError) as exc:
            raise ValueError("'secret' must be text or 'whsec_' followed by base64") from exc

    @classmethod
    async def check_config(cls, config: Mapping[str, Any], deployment: Deployment) -> None:
        url = str(config["url"])
        problem = _url_problem(url, deployment)
        if problem:
            raise ValueError(problem)
        host = urlsplit(url).hostname or ""
        if _is_localhost(host) and deployment.production:
            raise ValueError("'url' names a loopback host")
        if literal_address(host) is not None or _is_localhost(host):
            return
        try:
            found = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
        except (OSError, TimeoutError):
            return  # not resolvable now: every delivery resolves and checks again
        for *_, sockaddr in found:
            refusal = address_refusal(ipaddress.ip_address(sockaddr[0]), deployment)
            if refusal:
                raise ValueError(f"'url' resolves to {refusal}")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT + READ_TIMEOUT + 5,
                                            connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
            # One keep-alive pool per adapter; at most CONNECTIONS sockets to the receiver.
            # No DNS cache: every new connection resolves (and checks) again.
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=30,
                                             resolver=_CheckedResolver(self.deployment),
                                             use_dns_cache=False)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector,
                                                  trust_env=False)
        return self._session

    async def deliver(self, event: PartnerEvent) -> None:
        try:
            problem = _url_problem(self.url, self.deployment)
        except ValueError:
            problem = "malformed"
        if problem:  # stored before the rule, or the deployment changed since
            raise DeliveryError("receiver address not allowed")
        body = event.to_json().encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, event.id, timestamp, body),
        }
        try:
            async with self._client().post(self._url, data=body, headers=headers,
                                           allow_redirects=False) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise DeliveryError("receiver answered an error status")
        except TimeoutError as exc:
            raise DeliveryError("receiver timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise DeliveryError("receiver address not allowed") from exc
            raise DeliveryError("receiver refused") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError("receiver refused") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
