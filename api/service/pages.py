"""The web pages: member privacy center, admin console, public notices, the cookie banner.

Static files only (the pages speak to the public ``/graphql`` like any client), each response
under a strict Content-Security-Policy: scripts, styles and connections from this origin
only, no inline code, no framing. ``/account/...`` answers the privacy center's page for any
sub-path, so links in mails (``/account/verify-email?token=...``) open it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAGE_CSP", "STATIC_DIR", "routes"]

STATIC_DIR = Path(__file__).with_name("static")
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_CSP_HEADER = (b"content-security-policy", PAGE_CSP.encode())


def _page(relative: str) -> Response:
    path = STATIC_DIR / relative
    if not path.is_file():  # a page another part of the project has not shipped yet
        return Response("not found", status_code=404, media_type="text/plain",
                        headers={"content-security-policy": PAGE_CSP})
    return FileResponse(path, headers={"content-security-policy": PAGE_CSP})


async def _account(request: Request) -> Response:
    return _page("account/index.html")


async def _console(request: Request) -> Response:
    return _page("console/index.html")


async def _notices(request: Request) -> Response:
    return _page("notices/index.html")


async def _banner(request: Request) -> Response:
    """The embeddable banner script; cross-origin use is governed by CONSENTRY_CORS_ORIGINS
    (the app's CORS middleware answers for the allowed origins)."""
    return _page("banner/consent.js")


def _slash(target: str) -> Route:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(target, status_code=308)

    return Route(target.rstrip("/"), redirect, methods=["GET", "HEAD"])


class _WithCSP:
    """Adds the pages' CSP to what ``app`` answers (static assets and their 404s alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), _CSP_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_csp)


def routes() -> list[BaseRoute]:
    """The pages' routes, to add to the app's (they take nothing from the runtime)."""
    methods = ["GET", "HEAD"]
    return [
        _slash("/account/"),
        Route("/account/", _account, methods=methods),
        Route("/account/{rest:path}", _account, methods=methods),
        _slash("/console/"),
        Route("/console/", _console, methods=methods),
        Route("/console/{rest:path}", _console, methods=methods),
        Route("/notices", _notices, methods=methods),
        Route("/consent.js", _banner, methods=methods),
        Mount("/static", app=_WithCSP(StaticFiles(directory=STATIC_DIR)), name="static"),
    ]
