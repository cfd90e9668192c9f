"""Reference endpoints: the same rows served as plain JSON from starlette, no GraphQL.

Each reads and decrypts exactly what its GraphQL scenario reads, through the same services
(so the ratio isolates the GraphQL layer), and returns it with orjson.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import admin_members, members
from api.members import MemberView
from api.runtime import Runtime

__all__ = ["routes"]


def _json(data: object) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _member(view: MemberView) -> dict[str, object]:
    return {"id": view.id, "userId": view.user_id, "email": view.email,
            "fullName": view.full_name, "phone": view.phone, "address": view.address,
            "dateOfBirth": view.date_of_birth.isoformat() if view.date_of_birth else None,
            "status": view.status.value}


def routes(rt: Runtime) -> list[Route]:
    async def plain_me(request: Request) -> Response:
        view = await members.get_view(rt, request.query_params["id"])
        return _json({"me": _member(view)})

    async def plain_members(request: Request) -> Response:
        page = await admin_members.page(rt, int(request.query_params.get("first", "50")), None,
                                        None)
        edges = [{"cursor": v.id, "node": _member(v)} for v in page.views]
        return _json({"members": {"edges": edges, "pageInfo": {
            "hasNextPage": page.has_next, "endCursor": edges[-1]["cursor"] if edges else None}}})

    async def plain_hello(request: Request) -> Response:
        return _json({"hello": "world"})

    return [Route("/plain/me", plain_me), Route("/plain/members", plain_members),
            Route("/plain/hello", plain_hello)]
