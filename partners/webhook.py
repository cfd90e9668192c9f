"""Built-in ``webhook`` adapter: POSTs each event as JSON, signed per Standard Webhooks.

Headers: ``webhook-id`` (the event id, the receiver's dedupe key), ``webhook-timestamp``
(Unix seconds, wall clock: receivers check it against their own clock to refuse replays) and
``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")). The key
is the base64 part of a ``whsec_...`` secret, or the secret's UTF-8 bytes otherwise.
Any non-2xx answer, timeout or connection error is a failure (delivery retries).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yarl

from partners.base import PERSONAL_FIELDS, DeliveryError, PartnerAdapter, PartnerEvent, require_keys

__all__ = ["WebhookAdapter", "signing_key", "sign"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 5.0
CONNECTIONS = 32  # matches the delivery concurrency


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    return secret.encode("utf-8")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


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

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT + READ_TIMEOUT + 5,
                                            connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
            # One keep-alive pool per adapter; at most CONNECTIONS sockets to the receiver.
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=30))
        return self._session

    async def deliver(self, event: PartnerEvent) -> None:
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
                    raise DeliveryError(f"receiver answered HTTP {response.status}")
        except TimeoutError as exc:
            raise DeliveryError("receiver timed out") from exc
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"cannot reach receiver ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
