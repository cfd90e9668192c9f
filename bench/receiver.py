"""Serve a bench's webhook receiver in its own process: bind a free loopback port, print it on
stdout (the parent reads the first line), and serve until killed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

__all__ = ["serve_forever", "signed"]

Handler = Callable[[web.Request], Awaitable[web.Response]]


def serve_forever(post: tuple[str, Handler], get: tuple[str, Handler]) -> None:
    async def main() -> None:
        app = web.Application()
        app.router.add_post(*post)
        app.router.add_get(*get)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def signed(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """A Standard Webhooks signature check, as a partner's receiver does it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body,
                   hashlib.sha256).digest()
    return hmac.compare_digest(headers["webhook-signature"], "v1," + base64.b64encode(mac).decode())
