"""Real local receivers for delivery tests: a Standard Webhooks receiver on 127.0.0.1.

The receiver verifies signatures itself (independently of partners/webhook.py), dedupes by
``webhook-id`` like a well-behaved partner would, can answer 503 for the first N requests, and
can hold requests open (to kill a worker while deliveries are in flight).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web

TOLERANCE = 300  # seconds, as the Standard Webhooks reference libraries


def verify(secret: str, headers: Any, body: bytes, now: float | None = None) -> bool:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp.isdigit() and signatures):
        return False
    if abs((now or time.time()) - int(stamp)) > TOLERANCE:
        return False
    key = (base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_")
           else secret.encode())
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


class WebhookReceiver:
    """``async with WebhookReceiver(secret) as r: r.url`` ... ``r.unique`` (id -> event)."""

    def __init__(self, secret: str, *, fail_first: int = 0, hold_after: int | None = None) -> None:
        self.secret = secret
        self.fail_remaining = fail_first
        self.hold_after = hold_after  # requests beyond this many (accepted) wait on `release`
        self.release = asyncio.Event()
        self.holding = asyncio.Event()  # set once a request is being held
        self.requests = 0
        self.bad_signatures = 0
        self.failed = 0
        self.deliveries: Counter[str] = Counter()  # every valid 2xx delivery, duplicates included
        self.unique: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if not verify(self.secret, request.headers, body):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        if self.fail_remaining > 0:
            self.fail_remaining -= 1
            self.failed += 1
            return web.Response(status=503, text="try later")
        if self.hold_after is not None and sum(self.deliveries.values()) >= self.hold_after:
            self.holding.set()
            await self.release.wait()
        event = json.loads(body)
        assert event["id"] == request.headers["webhook-id"]
        self.deliveries[event["id"]] += 1
        self.unique.setdefault(event["id"], event)  # dedupe by id: first copy wins
        return web.Response(status=204)

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
