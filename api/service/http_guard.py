"""Plain ASGI middleware: security headers on every response and a request-body size cap.

Also the one shape of transport-level refusals (bad JSON, no query, batch, body too large): a
GraphQL-style JSON body with ``extensions.code``, never plain text, so clients parse one format.
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "json_error"]

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
]
_CSP_API = b"default-src 'none'; frame-ancestors 'none'"
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, max_body: int, production: bool) -> None:
        self.app, self.max_body, self.production = app, max_body, production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        is_ide = scope["path"] == "/graphql" and scope["method"] == "GET" and not self.production

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name for name, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in present]
                if not is_ide:
                    headers.append((b"content-security-policy", _CSP_API))
                if self.production:
                    headers.append(_HSTS)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            await _too_large(send)


class _BodyTooLarge(Exception):
    pass


def _error_body(message: str, code: str) -> dict[str, list[dict[str, object]]]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def json_error(status: int, message: str, code: str = "BAD_USER_INPUT") -> JSONResponse:
    """A refused HTTP request, in the same JSON shape as a GraphQL error."""
    return JSONResponse(_error_body(message, code), status_code=status)


async def _too_large(send: Send) -> None:
    body = json.dumps(_error_body("request body too large", "BAD_USER_INPUT")).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                            *_HEADERS, (b"content-security-policy", _CSP_API)]})
    await send({"type": "http.response.body", "body": body})
