"""Plain ASGI middleware and uvicorn protocol: the transport-level limits of the API.

- ``SecurityHeaders``: security headers on every response, request headers capped at
  ``MAX_HEADER_BYTES`` (431), the request body capped (413), and the last catch for an
  exception that escaped the app (a JSON 500, or 503 UNAVAILABLE when the database is down,
  logged without messages; was a plain-text 500 and a reset connection).
- ``JSONDepthGuard``: refuses JSON bodies nested more than ``MAX_JSON_DEPTH`` levels (400)
  before anything parses them: the stdlib parser raised RecursionError at about 1,000 levels
  and orjson stops at 1,024, both far beyond any real request.
- ``bounded_http_protocol``: uvicorn's httptools protocol with a cap on the request head while
  it is read (httptools has no limit of its own: a 4 MB header was read and served).

Also the one shape of transport-level refusals (bad JSON, no query, batch, too large): a
GraphQL-style JSON body with ``extensions.code``, never plain text, so clients parse one format.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.headers import first_values
from schema.errors import caused_by_outage, safe_traceback

__all__ = ["MAX_HEADER_BYTES", "MAX_JSON_DEPTH", "JSONDepthGuard", "SecurityHeaders",
           "bounded_http_protocol", "json_error", "json_too_deep", "too_deep_message"]

log = logging.getLogger("consentry.http")

MAX_HEADER_BYTES = 16 * 1024
MAX_JSON_DEPTH = 64

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
    def __init__(self, app: ASGIApp, *, max_body: int, production: bool,
                 max_headers: int = MAX_HEADER_BYTES) -> None:
        self.app, self.max_body, self.production = app, max_body, production
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b"")) + sum(
            len(name) + len(value) for name, value in headers)
        if head > self.max_headers:
            await _refuse(send, 431, "request headers too large", "BAD_USER_INPUT")
            return
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _refuse(send, 413, "request body too large", "BAD_USER_INPUT")
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
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name for name, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in present]
                if not is_ide and b"content-security-policy" not in present:  # pages set theirs
                    headers.append((b"content-security-policy", _CSP_API))
                if self.production:
                    headers.append(_HSTS)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            await _refuse(send, 413, "request body too large", "BAD_USER_INPUT")
        except Exception as exc:  # the last guard: JSON answer, safe log
            outage = caused_by_outage(exc)
            if outage:
                log.warning("dependency unavailable during an HTTP request: %s",
                            type(exc).__qualname__)
            else:
                log.error("unhandled error in an HTTP request\n%s", safe_traceback(exc))
            if not started:  # else uvicorn closes the connection: the answer is cut short
                if outage:
                    await _refuse(send, 503, "a service this request needs is unavailable; "
                                  "retry later", "UNAVAILABLE")
                else:
                    await _refuse(send, 500, "internal error", "INTERNAL")


class _BodyTooLarge(Exception):
    pass


def _error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def json_error(status: int, message: str, code: str = "BAD_USER_INPUT") -> JSONResponse:
    """A refused HTTP request, in the same JSON shape as a GraphQL error."""
    return JSONResponse(_error_body(message, code), status_code=status)


def _response_head(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
            *_HEADERS, (b"content-security-policy", _CSP_API)]


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    """Answer and close the connection (the body may be unread)."""
    body = json.dumps(_error_body(message, code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": _response_head(body)})
    await send({"type": "http.response.body", "body": body})


# -- JSON nesting ------------------------------------------------------------------------------
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def too_deep_message(limit: int = MAX_JSON_DEPTH) -> str:
    return f"the JSON is nested more than {limit} levels deep"


def json_too_deep(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects in ``data`` nest more than ``limit`` deep, without parsing.

    Strings are cut out, then every innermost ``[]`` pair is removed per pass (all at C speed):
    a balanced text is empty after ``limit`` passes exactly when it nests at most ``limit``
    deep. Malformed text that cannot be peeled counts as too deep (a parser refuses it anyway).
    """
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(_ONE_KIND, _NOT_BRACKETS)
    if brackets.count(b"[") <= limit:
        return False
    for _ in range(limit):
        peeled = brackets.replace(b"[]", b"")
        if not peeled:
            return False
        if len(peeled) == len(brackets):
            return True
        brackets = peeled
    return True


class JSONDepthGuard:
    """Reads a JSON POST body, refuses it when nested too deep, else replays it to ``app``.

    Mounted inside :class:`SecurityHeaders`, so the body it buffers is already size-capped.
    """

    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app, self.max_depth = app, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or b"json" not in first_values(scope, b"content-type")[0].lower()):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_too_deep(body, self.max_depth):
            await json_error(400, too_deep_message(self.max_depth))(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# -- the request head, while uvicorn reads it ----------------------------------------------------
def bounded_http_protocol(max_head: int = MAX_HEADER_BYTES) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing with 431 when a request head outgrows ``max_head``.

    Bytes are counted per chunk while a head is open, so memory stays bounded by one read plus
    the limit. A chunk in which a new message begins after a body is not counted (where the head
    starts in it is unknown), so this cap is loose by up to one read; the exact limit is
    :class:`SecurityHeaders`' check of the parsed headers.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHeadProtocol(HttpToolsProtocol):
        _state = "idle"  # idle (between messages) | head | body
        _head_bytes = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._state, self._head_bytes = "head", 0

        def on_headers_complete(self) -> None:
            self._state = "body"
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._state = "idle"
            super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            before = self._state
            super().data_received(data)
            if self._state != "head" or before == "body" or self.transport.is_closing():
                return
            self._head_bytes += len(data)
            if self._head_bytes > max_head:
                self._refuse_head()

        def _refuse_head(self) -> None:
            log.warning("request head over %d bytes refused", max_head)
            if self.cycle is None or self.cycle.response_complete:
                body = json.dumps(_error_body("request headers too large",
                                              "BAD_USER_INPUT")).encode()
                head = b"".join(name + b": " + value + b"\r\n"
                                for name, value in _response_head(body))
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n" + head
                                     + b"\r\n" + body)
            self.transport.close()

    return BoundedHeadProtocol
