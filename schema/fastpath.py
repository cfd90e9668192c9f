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
- the context is built exactly as for the view (``schema.context.build_context``).

Every schema extension ``build_schema`` installs must be mirrored here; :data:`MIRRORED` names
them and ``tests/test_fastpath.py`` fails when the schema gains one this path does not know.
Should a schema with an unknown extension reach :class:`FastGraphQL` anyway, it serves
everything through the view (correct, only slower) and logs a warning.

Anything else (GET, non-JSON bodies, batches, invalid documents, syntax errors, subscriptions,
``extensions`` in the request, a multipart ``Accept``) is replayed to strawberry's view
unchanged, so error answers for malformed requests come from one place.
``tests/test_fastpath.py`` proves both paths give the same answers, and the authorization
matrix and error tests run through both.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

import orjson
import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql import execute as gql_execute
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.schema.schema import validate_document

from api.platform.runtime import Runtime
from schema import LIMITS, validation_rules
from schema.context import build_context
from schema.errors import ErrorCodes, classify
from schema.limits import HideSuggestions, strip_suggestions

__all__ = ["FastGraphQL", "MIRRORED", "extension_classes"]

log = logging.getLogger("consentry.graphql")

_DOCUMENT_CACHE_SIZE = 512

# Every schema extension and where this path does the same thing. A new extension in
# ``build_schema`` needs its line here, and the same behaviour below, before it can be listed.
MIRRORED: frozenset[type] = frozenset({
    ErrorCodes,  # classify() on every error, with the request id
    ParserCache,  # _prepare: one parse per distinct query text
    ValidationCache,  # _prepare: one validation per distinct query text
    AddValidationRules,  # _rules: graphql's rules plus validation_rules(production)
    MaxTokensLimiter,  # parse(max_tokens=LIMITS["tokens"])
    HideSuggestions,  # strip_suggestions() on every message in production
})


def extension_classes(schema: strawberry.Schema) -> frozenset[type]:
    """The classes of the extensions strawberry runs on each request of ``schema`` (the
    configured factories resolved, plus what strawberry adds itself)."""
    return frozenset(type(ext) for ext in schema.get_extensions())


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

    class LeafShortcut(base):  # type: ignore[misc]  # a base known only at run time
        def execute_field(self, parent_type: GraphQLObjectType, source: Any,
                          field_details_list: Any, path: Any, position_context: Any) -> Any:
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
                except Exception:  # noqa: S110 - the normal path reports it
                    pass
            return super().execute_field(parent_type, source, field_details_list, path,
                                          position_context)

    return LeafShortcut


@dataclass(frozen=True)
class _Prepared:
    document: DocumentNode
    name: str | None


def _header(scope: Scope, name: bytes) -> bytes:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value
    return b""


class FastGraphQL:
    """ASGI endpoint for ``/graphql``: the fast path, else strawberry's ``view``.

    ``enabled`` False sends every request to the view (tests run the same cases both ways).
    """

    def __init__(self, view: Any, rt: Runtime) -> None:
        self.view = view
        self.rt = rt
        self.schema = view.schema
        unknown = extension_classes(view.schema) - MIRRORED
        self.enabled = not unknown
        if unknown:
            log.warning("fast GraphQL path off: it does not mirror the extension(s) %s",
                        ", ".join(sorted(c.__name__ for c in unknown)))
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
        if (not self.enabled or scope["type"] != "http" or scope["method"] != "POST"
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
        ctx = await build_context(self.rt, Request(scope, replay))
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
