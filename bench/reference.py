"""Reference endpoints: the same rows served as plain JSON from starlette, no GraphQL.

Each reads and decrypts exactly what its GraphQL scenario reads, through the same services
(so the ratio isolates the GraphQL layer), and returns it with orjson.
"""

from __future__ import annotations

import base64

import orjson
import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from api.consent import consents as consent
from api.consent import policy
from api.members import admin_members, profile, sessions, verification
from api.members import records as members
from api.members.records import MemberView
from api.models.enums import PersonalField
from api.platform import ratelimit
from api.platform.runtime import Runtime
from api.sharing import oauth, pull
from schema.context import build_context, principal_for

__all__ = ["routes"]


def _json(data: object) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _member(view: MemberView) -> dict[str, object]:
    return {"id": view.id, "userId": view.user_id, "email": view.email,
            "fullName": view.full_name, "phone": view.phone, "address": view.address,
            "dateOfBirth": view.date_of_birth.isoformat() if view.date_of_birth else None,
            "status": view.status.value}


def routes(rt: Runtime) -> list[Route]:
    async def me_of(member_id: str) -> Response:
        view, current = await consent.member_and_current(rt, member_id)
        consents = [{"purpose": c.purpose, "state": c.state.value,
                     "policyVersion": c.policy_version, "at": c.at.isoformat()}
                    for c in current]
        return _json({"me": {**_member(view), "consents": consents}})

    async def plain_me(request: Request) -> Response:
        """What ``me`` does: the caller checked as every request to ``/graphql`` is (the
        bearer token, then the member's liveness and the session's revocation:
        ``schema.context.build_context``, as ``plain_shared`` checks its partner's
        credential), then the same read, minus GraphQL."""
        ctx = await build_context(rt, request)
        if ctx.principal is None or ctx.principal.role != "MEMBER":
            return Response(status_code=401)
        return await me_of(ctx.principal.subject)

    async def plain_me_unchecked(request: Request) -> Response:
        """The read alone, the member named in the URL and no caller checked: round 1's
        reference, kept as a row so figures stay comparable across rounds."""
        return await me_of(request.query_params["id"])

    async def plain_members(request: Request) -> Response:
        page = await admin_members.page(rt, int(request.query_params.get("first", "50")), None,
                                        None)
        edges = [{"cursor": base64.urlsafe_b64encode(v.id.encode()).decode(), "node": _member(v)}
                 for v in page.views]
        return _json({"members": {"edges": edges, "pageInfo": {
            "hasNextPage": page.has_next, "endCursor": edges[-1]["cursor"] if edges else None}}})

    async def plain_shared(request: Request) -> Response:
        """What ``sharedMembers`` does (credential check, grants, decryption, refs, cursors,
        disclosure rows) through the same services, minus GraphQL."""
        header = request.headers.get("authorization", "")
        principal = principal_for(rt, header.partition(" ")[2])
        partner_id = await oauth.active_partner(rt, principal, "members:read")
        page = await pull.shared_members(rt, partner_id, int(request.query_params.get("first", "100")),
                                         None)
        edges = []
        for r in page.records:
            dob = r.date_of_birth()
            edges.append({"cursor": r.cursor, "node": {
                "ref": r.ref, "userId": r.get(PersonalField.USER_ID),
                "email": r.get(PersonalField.EMAIL), "fullName": r.get(PersonalField.FULL_NAME),
                "dateOfBirth": dob.isoformat() if dob else None,
                "phone": r.get(PersonalField.PHONE), "address": r.get(PersonalField.ADDRESS)}})
        return _json({"sharedMembers": {"edges": edges, "pageInfo": {
            "hasNextPage": page.has_next, "endCursor": page.end_cursor}}})

    async def plain_consent_pair(request: Request) -> Response:
        """What the ``giveConsent`` + ``withdrawConsent`` document does: two writes (event,
        signed receipt, audit entry each) through the same services."""
        member_id, purpose = request.query_params["id"], request.query_params["purpose"]
        version = (await policy.in_force(rt)).version
        given = await consent.give(rt, member_id, purpose, version)
        withdrawn = await consent.withdraw(rt, member_id, purpose)
        return _json({"g": {"state": given.state.value, "receipt": given.receipt},
                      "w": {"state": withdrawn.state.value, "receipt": withdrawn.receipt}})

    async def plain_profile_pair(request: Request) -> Response:
        """What the two-``updateProfile`` document does: two profile writes."""
        member_id = request.query_params["id"]
        first = await profile.update(rt, member_id, {"phone": "+44 20 7946 0001"})
        second = await profile.update(rt, member_id, {"phone": "+44 20 7946 0002"})
        return _json({"a": {"phone": first.phone}, "b": {"phone": second.phone}})

    async def plain_register(request: Request) -> Response:
        """What ``register`` does: the rate-limit check, the registration (argon2 hash, data
        key, encrypted fields, audit entry, verification mail queued) and a session."""
        data = orjson.loads(await request.body())
        client = request.client.host if request.client else ""
        await ratelimit.check_register(rt, data["userId"], client)
        view = await verification.register(
            rt, user_id=data["userId"], email=data["email"], full_name=data["fullName"],
            password=data["password"], phone=data.get("phone"), address=data.get("address"))
        pair = await sessions.start(rt, "MEMBER", view.id, request.headers.get("user-agent"))
        view = await members.get_view(rt, pair.subject)
        return _json({"register": {"accessToken": pair.access_token,
                                   "refreshToken": pair.refresh_token,
                                   "expiresIn": pair.expires_in, "role": pair.role,
                                   "member": {"id": view.id, "userId": view.user_id}}})

    async def plain_hello(request: Request) -> Response:
        return _json({"hello": "world"})

    return [Route("/plain/me", plain_me), Route("/plain/me_unchecked", plain_me_unchecked),
            Route("/plain/members", plain_members),
            Route("/plain/shared", plain_shared),
            Route("/plain/hello", plain_hello),
            Route("/plain/consent_pair", plain_consent_pair),
            Route("/plain/profile_pair", plain_profile_pair),
            Route("/plain/register", plain_register, methods=["POST"]),
            Route("/plain/typename", _bare_strawberry(), methods=["POST"])]


def _bare_strawberry() -> GraphQL:
    """The stack's GraphQL floor: stock strawberry answering ``{ __typename }``, no database."""

    @strawberry.type
    class Query:
        hello: str = "world"

    return GraphQL(strawberry.Schema(query=Query), graphql_ide=None)
