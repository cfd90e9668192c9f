"""The server process: the real app (api.service.asgi.create_app) plus bench-only routes, under uvicorn.

``/plain/...`` are the references (bench/reference.py). ``/variant/<name>/graphql`` serve the
same schema with levers switched off, so each lever is measured in the same run:
``strawberry`` is stock strawberry (no caches, json encoder, no fast path). Everything else
(``/graphql`` and the contract routes) is the app exactly as ``consentry serve`` builds it.
Bench-only routes sit behind the app's own middleware stack, so the comparison is fair.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.platform.runtime import Runtime
from api.service.asgi import ConsentryGraphQL, create_app
from api.service.composition import build_runtime
from bench import reference


class _StockView(ConsentryGraphQL):
    """strawberry as the obvious build has it: no document caches, stdlib json, and the bearer
    token verified (EdDSA) on every request."""

    def __init__(self, rt: Runtime) -> None:
        from schema import Mutation, Query
        from schema.errors import ErrorCodes

        super().__init__(rt, graphql_ide=None)
        self.schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[ErrorCodes])

    def encode_json(self, data: object) -> str:  # type: ignore[override]
        import json

        return json.dumps(data, separators=(",", ":"))

    async def get_context(self, request: Any, response: Any = None) -> Any:
        from api.security.tokens import decode_access_token
        from schema.context import Context

        ctx = Context(self.rt, request, None, "bench")
        token = request.headers.get("authorization", "").partition(" ")[2]
        if token:
            s = self.rt.settings
            ctx.principal = decode_access_token(self.rt.keys, token, issuer=s.issuer,
                                                audience=s.audience, now=self.rt.now())
        return ctx


def _variants(rt: Runtime) -> list[Route]:
    """``strawberry``: stock; ``cached``: the app's strawberry view (caches, orjson, token
    cache) without the fast path in front of it."""
    return [Route("/variant/strawberry/graphql", _StockView(rt), methods=["GET", "POST"]),
            Route("/variant/cached/graphql", ConsentryGraphQL(rt, graphql_ide=None),
                  methods=["GET", "POST"])]


def build(rt: Runtime) -> Any:
    app = create_app(rt)
    extra = Starlette(routes=reference.routes(rt) + _variants(rt),
                      middleware=list(app.user_middleware))

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path.startswith(("/plain/", "/variant/")):
            await extra(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch


def _gc_lever(app: Any, unfreeze: bool, threshold: int) -> Any:
    import gc

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async def sent(message: Any) -> None:
                if message["type"] == "lifespan.startup.complete":
                    if unfreeze:
                        gc.unfreeze()
                    if threshold:
                        gc.set_threshold(threshold, *gc.get_threshold()[1:])
                await send(message)
            await app(scope, receive, sent)
        else:
            await app(scope, receive, send)

    return wrapped


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="undo the app's gc.freeze() after start-up (lever measurement)")
    parser.add_argument("--gc-threshold", type=int, default=0,
                        help="generation-0 threshold (lever measurement; 0 = Python's default)")
    args = parser.parse_args()
    rt = build_runtime()
    app = build(rt)
    if args.no_gc_freeze or args.gc_threshold:
        app = _gc_lever(app, args.no_gc_freeze, args.gc_threshold)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, server_header=False, loop=args.loop, http=args.http,
                lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
