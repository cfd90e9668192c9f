"""The fast GraphQL path: validated documents executed by graphql-core directly.

Measured (bench/, README "Performance"): strawberry's view spends most of a small request on
per-request machinery (extension runner, hooks, context managers, re-hashing the cached
document for the validation cache, stdlib JSON). This path keeps everything that defines the
answer (the same graphql-core schema, so the same resolvers, permission classes and
strawberry types; the same validation rules; the same error mapping, ``schema.errors.classify``)
and drops the rest:

- a document is parsed (token limit) and validated (same rules as the view) once per distinct
  query text, in a bounded LRU; only documents with exactly one query or mutation that
  validated cleanly take this path;
- the body is decoded and the answer encoded with orjson;
- the caller's verified token is cached by its full string (``principal_for``): the signature
  is checked once, expiry and not-before on every request against ``rt.now()``.

Anything else (GET, non-JSON bodies, batches, invalid documents, syntax errors, subscriptions,
``extensions`` in the request, a multipart ``Accept``) is replayed to strawberry's view
unchanged, so error answers for malformed requests come from one place.
``tests/test_fastpath.py`` proves both paths give the same answers.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

import jwt
import orjson
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from graphql import execute as gql_execute
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import validate_document

from api.core.errors import ConsentryError, Unauthenticated
from api.platform.runtime import Runtime
from api.security.tokens import Principal, decode_access_token
from schema import LIMITS, validation_rules
from schema.context import Context
from schema.errors import classify
from schema.limits import strip_suggestions

__all__ = ["FastGraphQL", "principal_for", "build_context"]

_TOKEN_CACHE = "fastpath.tokens"
_TOKEN_CACHE_SIZE = 10_000
_DOCUMENT_CACHE_SIZE = 512


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    exp: float
    nbf: float
    kid: str


def principal_for(rt: Runtime, token: str) -> Principal:
    """``decode_access_token`` with the signature check cached by the full token string.

    Access tokens are stateless (nothing revokes one before ``exp``), so a token that verified
    once verifies again; only the times can change the answer, and they are checked on every
    call with the same messages. Invalid tokens are never cached.
    """
    cache: OrderedDict[str, _Verified] = rt.extras.setdefault(_TOKEN_CACHE, OrderedDict())
    now = rt.now()
    hit = cache.get(token)
    if hit is None or hit.kid != rt.keys.kid:
        s = rt.settings
        principal = decode_access_token(rt.keys, token, issuer=s.issuer, audience=s.audience,
                                        now=now)
        claims = jwt.decode(token, options={"verify_signature": False})
        hit = _Verified(principal, float(claims["exp"]),
                        float(claims.get("nbf", claims["iat"])), rt.keys.kid)
        cache[token] = hit
        if len(cache) > _TOKEN_CACHE_SIZE:
            cache.popitem(last=False)
        return principal
    ts = now.timestamp()
    if hit.exp <= ts:
        del cache[token]
        raise Unauthenticated("token expired")
    if hit.nbf > ts + 30:
        raise Unauthenticated("token not yet valid")
    return hit.principal


def build_context(rt: Runtime, request: Request | None) -> Context:
    """The per-request context: request id and the caller from ``Authorization: Bearer``."""
    headers = request.headers if request is not None else {}
    request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
    ctx = Context(rt, request, None, request_id)
    header = headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise ConsentryError("Authorization must be 'Bearer <token>'")
            ctx.principal = principal_for(rt, token.strip())
        except ConsentryError as exc:
            ctx.auth_error = exc if isinstance(exc, Unauthenticated) else Unauthenticated(
                exc.message)
    return ctx


def _executor_class(base: type) -> type:
    """strawberry's executor with a shortcut for plain leaf fields (no resolver, no arguments,
    a scalar or enum type): the value is read and coerced without building a resolve info.

    That bookkeeping is most of the cost of a list (100 members x 8 fields = 1,000 fields).
    Anything unusual (null, an error, an awaitable, arguments, middleware) goes through the
    normal ``execute_field`` again, which is safe because a plain field is a pure attribute
    read; so errors and nulls are produced by graphql-core exactly as before.
    """
    from graphql import Undefined, get_nullable_type, is_leaf_type

    plans: dict[int, Any] = {}

    class LeafShortcut(base):  # type: ignore[misc, valid-type]
        def execute_field(self, parent_type, source, field_details_list, path,  # noqa: ANN001, ANN201
                          position_context):  # noqa: ANN001
            node = field_details_list[0].node
            field_def = self.schema.get_field(parent_type, node.name.value)
            plan = plans.get(id(field_def), False) if field_def is not None else None
            if plan is False:
                leaf = get_nullable_type(field_def.type)
                resolve = field_def.resolve
                plan = (resolve, leaf) if (
                    resolve is not None and getattr(resolve, "_is_default", False)
                    and not field_def.args and is_leaf_type(leaf)) else None
                plans[id(field_def)] = plan
            if (plan is not None and not node.arguments and not self.middleware_manager
                    and len(field_details_list) == 1):
                try:
                    value = plan[0](source, None)
                    if value is not None and not isinstance(value, Exception) and not (
                            self.is_awaitable(value)):
                        coerced = plan[1].coerce_output_value(value)
                        if coerced is not Undefined and coerced is not None:
                            return coerced
                except Exception:  # noqa: BLE001, S110 - the normal path reports it
                    pass
            return super().execute_field(parent_type, source, field_details_list, path,
                                          position_context)

    return LeafShortcut


@dataclass(frozen=True)
class _Prepared:
    document: DocumentNode
    name: str | None


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return b""


class FastGraphQL:
    """ASGI endpoint for ``/graphql``: the fast path, else strawberry's ``view``."""

    def __init__(self, view: Any, rt: Runtime) -> None:
        self.view = view
        self.rt = rt
        self.schema = view.schema
        self._core = view.schema._schema
        self._production = rt.settings.production
        from graphql import specified_rules

        self._rules = (*specified_rules, *validation_rules(self._production))
        self._documents: OrderedDict[str, _Prepared | None] = OrderedDict()
        from strawberry.schema._graphql_core import execution_context_class_kwargs

        self._execute_kwargs = {
            "is_awaitable": optimized_is_awaitable, "operation_extensions": None,
            **execution_context_class_kwargs(
                _executor_class(view.schema.execution_context_class)),
        }

    # -- planning --------------------------------------------------------------------------
    def _prepare(self, query: str) -> _Prepared | None:
        if query in self._documents:
            self._documents.move_to_end(query)
            return self._documents[query]
        prepared: _Prepared | None = None
        try:
            document = parse(query, max_tokens=LIMITS["tokens"])
        except GraphQLError:
            document = None
        if document is not None:
            ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if (len(ops) == 1 and ops[0].operation in (OperationType.QUERY, OperationType.MUTATION)
                    and not validate_document(self._core, document, self._rules)):
                prepared = _Prepared(document, ops[0].name.value if ops[0].name else None)
        self._documents[query] = prepared
        if len(self._documents) > _DOCUMENT_CACHE_SIZE:
            self._documents.popitem(last=False)
        return prepared

    def _plan(self, body: bytes) -> tuple[_Prepared, dict[str, Any] | None, str | None] | None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict or data.get("extensions") is not None:
            return None
        query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
        if (type(query) is not str or (variables is not None and type(variables) is not dict)
                or (name is not None and type(name) is not str)):
            return None
        prepared = self._prepare(query)
        if prepared is None or (name is not None and name != prepared.name):
            return None
        return prepared, variables, name

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or not _header(scope, b"content-type").startswith(b"application/json")
                or b"multipart" in _header(scope, b"accept")):
            await self.view(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        plan = self._plan(body)
        if plan is None:
            await self.view(scope, replay, send)
            return
        prepared, variables, name = plan
        ctx = build_context(self.rt, Request(scope, replay))
        result = gql_execute(self._core, prepared.document, None, ctx, variables, name,
                             **self._execute_kwargs)
        if isawaitable(result):
            result = await result
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            self.schema.process_errors(result.errors)
            if self._production:
                for error in result.errors:
                    error.message = strip_suggestions(error.message)
            payload["errors"] = [classify(e, ctx.request_id).formatted for e in result.errors]
        out = orjson.dumps(payload)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(out)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})
