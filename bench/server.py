"""The server process: the real app (api.app.create_app) plus bench-only routes, under uvicorn.

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

from api.app import ConsentryGraphQL, create_app
from api.runtime import Runtime
from bench import reference


def _variants(rt: Runtime) -> list[Route]:
    from schema import Mutation, Query
    from schema.errors import ErrorCodes

    stock = ConsentryGraphQL(rt, graphql_ide=None)
    stock.schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[ErrorCodes])
    stock.encode_json = _stdlib_json  # type: ignore[method-assign]
    return [Route("/variant/strawberry/graphql", stock, methods=["GET", "POST"])]


def _stdlib_json(data: object) -> str:
    import json

    return json.dumps(data, separators=(",", ":"))


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    args = parser.parse_args()
    rt = Runtime.create()
    uvicorn.run(build(rt), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, server_header=False, loop=args.loop, http=args.http,
                lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
