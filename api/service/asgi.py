"""The ASGI application: GraphQL at /graphql plus the small HTTP surface of the contract."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from tortoise import connections

from api.core.errors import RateLimited
from api.platform import metrics, ratelimit
from api.platform.db import close_db, init_db
from api.platform.runtime import Runtime
from api.service import pages
from api.service.http_guard import (
    JSONDepthGuard,
    SecurityHeaders,
    json_error,
    json_too_deep,
    too_deep_message,
)
from api.service.observability import (
    ObservedFastGraphQL,
    OperationLabels,
    RequestObserver,
    note_caller,
    note_operation,
)
from api.sharing import oauth
from schema import build_schema
from schema.context import Context, build_context
from schema.errors import ensure_codes

__all__ = ["create_app"]

log = logging.getLogger("consentry.app")


class ConsentryGraphQL(GraphQL):
    """Strawberry's ASGI view with our context: the caller is decoded from the bearer token."""

    def __init__(self, rt: Runtime, **kwargs: Any) -> None:
        schema = build_schema(production=rt.settings.production)
        super().__init__(schema, **kwargs)
        self.rt = rt
        self.labels = OperationLabels(schema._schema)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As strawberry's, but a malformed request (bad JSON, batch...) answers JSON with a code."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = json_error(exc.status_code, exc.reason)
        await response(scope, receive, send)

    async def process_result(self, request: Request, result: Any) -> Any:
        ensure_codes(result.errors, request.headers.get("x-request-id", "")[:64] or "-")
        return await super().process_result(request, result)

    async def get_context(  # type: ignore[override]  # HTTP only, no websocket; our Context
            self, request: Request, response: Any = None) -> Context:
        ctx = await build_context(self.rt, request)
        note_caller(ctx.principal, ctx.auth_error)
        return ctx

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        """As strawberry's, telling the request observer the operation (a bounded label)."""
        data = kwargs.get("request_data", args[-1] if args else None)
        note_operation(self.labels.of_query(getattr(data, "query", None),
                                            getattr(data, "operation_name", None)))
        return await super().execute_single(*args, **kwargs)

    def decode_json(self, data: str | bytes) -> object:
        """As strawberry's, after the nesting check (GET ``variables`` come here unchecked)."""
        if json_too_deep(data):
            raise HTTPException(400, too_deep_message())
        return super().decode_json(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(rt: Runtime, *, manage_db: bool = True) -> Starlette:
    """Build the app. ``manage_db=False`` when the caller (tests, bench) owns the ORM."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_db:
            await init_db(rt.settings)
        # Start-up objects (schema, models, modules) are permanent: moving them out of the
        # collector's generations keeps full collections short (they were the p99 tail).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if manage_db:
                await close_db()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await connections.get("default").execute_query("SELECT 1")
        except Exception:  # any failure means not ready; never leak its text
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def jwks(request: Request) -> Response:
        return JSONResponse(rt.keys.jwks(), headers={"cache-control": "public, max-age=300"})

    async def metrics_endpoint(request: Request) -> Response:
        return await metrics.endpoint(rt, request)

    async def token(request: Request) -> Response:
        try:
            await ratelimit.check_token_request(rt, request)
        except RateLimited as exc:
            return ratelimit.too_many_requests(exc)
        return await oauth.token_endpoint(rt, request)

    graphql = ConsentryGraphQL(
        rt,
        graphql_ide=None if rt.settings.production else "graphiql",
        allow_queries_via_get=True,
    )
    s = rt.settings
    middleware = [
        Middleware(RequestObserver, rt=rt),  # outermost: it times and logs every answer
        Middleware(TrustedHostMiddleware, allowed_hosts=list(s.trusted_hosts)),
        Middleware(CORSMiddleware, allow_origins=list(s.cors_origins),
                   allow_methods=["GET", "POST"],
                   allow_headers=["authorization", "content-type", "x-request-id"],
                   max_age=600),
        Middleware(SecurityHeaders, max_body=s.max_body_bytes, production=s.production),
        Middleware(JSONDepthGuard),
    ]
    routes = [
        Route("/graphql", ObservedFastGraphQL(graphql, rt, graphql.labels),
              methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/.well-known/jwks.json", jwks),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/metrics", metrics_endpoint),
        *pages.routes(),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.rt = rt
    return app
