"""The fast GraphQL path: validated documents executed by graphql-core directly.

Measured (bench/, README "Performance"): strawberry's view spends most of a small request on
per-request machinery (extension runner, hooks, context managers, re-hashing the cached
document for the validation cache, stdlib JSON). This path keeps everything that defines the
answer (the same graphql-core schema, so the same resolvers, permission classes and
strawberry types; the same validation rules; the same error mapping, ``schema.errors.classify``)
and drops the rest:

- a document is parsed (token limit) and validated (same rules as the view) once per distinct
  query text, in a bounded LRU; only documents with exactly one query or mutation that
  validated cleanly take this path; each is compiled then too (``schema/compiled.py``, as a
  trusted document is at start-up) and its plan runs it, so an ad-hoc ``me`` costs about what
  the trusted one does; what the compiler does not plan runs on graphql-core;
- the body is decoded and the answer encoded with orjson;
- the context is built exactly as for the view (``schema.context.build_context``).

Every schema extension ``build_schema`` installs must be mirrored here; :data:`MIRRORED` names
them and ``tests/test_fastpath.py`` fails when the schema gains one this path does not know.
Should a schema with an unknown extension reach :class:`FastGraphQL` anyway, it serves
everything through the view (correct, only slower) and logs a warning.

Trusted documents (``schema/trusted/``): a request naming a registered document by
``extensions.persistedQuery.sha256Hash`` runs the document parsed, validated and compiled
(``schema/compiled.py``) at start-up: no parse, no validation, no cache look-up and none of
graphql-core's per-field machinery per request (a document the compiler does not plan runs
on graphql-core as any other document); an unknown hash answers Apollo's message,
``PersistedQueryNotFound`` (what Apollo's clients look for), with ``BAD_USER_INPUT``: the
contract (``../shared/contract/README.md``, Errors) allows only its own codes, so not
Apollo's ``PERSISTED_QUERY_NOT_FOUND``. With ``trusted_documents_only`` any other
document (any method) from an anonymous or member caller is refused with ``FORBIDDEN``
before it is parsed; admins and partners keep ad-hoc documents.

Anything else (GET, non-JSON bodies, batches, invalid documents, syntax errors, subscriptions,
other ``extensions`` in the request, a multipart ``Accept``) is replayed to strawberry's view
unchanged, so error answers for malformed requests come from one place. With the fast path
off, a trusted document is replayed to the view as its registered text.
``tests/test_fastpath.py`` proves both paths give the same answers, and the authorization
matrix and error tests run through both.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
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

from api.core.headers import first_values
from api.platform.runtime import Runtime
from schema import LIMITS, validation_rules
from schema.compiled import Plan, Unsupported, compile_operation
from schema.context import build_context
from schema.errors import ErrorCodes, classify
from schema.limits import HideSuggestions, strip_suggestions
from schema.trusted import document_hash
from schema.trusted import load as load_trusted

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
    text: str | None = None  # set for a trusted document: its registered text
    plan: Plan | None = None  # the document's compiled plan, when it compiles
    # What a subclass derives from the document once and reuses on every request (the
    # observer's operation label, keyed by operation name).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


_SHA256 = re.compile(r"[0-9a-f]{64}")
_AD_HOC_ROLES = frozenset({"ADMIN", "PARTNER"})
_AD_HOC_REFUSED = ("only trusted documents are accepted from this caller: send a registered "
                   "operation by extensions.persistedQuery.sha256Hash")


class _Refused(Exception):
    """A request answered with one GraphQL error and no data, before anything runs."""

    def __init__(self, message: str, code: str, **extensions: str) -> None:
        super().__init__(message)
        self.payload = orjson.dumps({"data": None, "errors": [
            {"message": message, "extensions": {"code": code, **extensions}}]})


class FastGraphQL:
    """ASGI endpoint for ``/graphql``: the fast path, else strawberry's ``view``.

    ``enabled`` False sends every request to the view (tests run the same cases both ways).
    ``trusted`` (hash -> document) defaults to ``schema/trusted/manifest.json``; each is
    parsed, validated and compiled here, at start-up, and a document that does not validate
    stops it. ``compiled`` False runs trusted documents on graphql-core instead of their plans
    (tests compare the two).
    """

    def __init__(self, view: Any, rt: Runtime, trusted: Mapping[str, str] | None = None) -> None:
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
        self._trusted_only = rt.settings.trusted_documents_only
        self.compiled = True
        self._trusted = {digest: self._prepare_trusted(digest, text) for digest, text in
                         (load_trusted() if trusted is None else trusted).items()}
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
                name = ops[0].name.value if ops[0].name else None
                prepared = _Prepared(document, name, plan=self._compile(document, name))
        self._documents[query] = prepared
        if len(self._documents) > _DOCUMENT_CACHE_SIZE:
            self._documents.popitem(last=False)
        return prepared

    def _prepare_trusted(self, digest: str, text: str) -> _Prepared:
        document = parse(text, max_tokens=LIMITS["tokens"])
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if (document_hash(text) != digest or len(ops) != 1
                or ops[0].operation not in (OperationType.QUERY, OperationType.MUTATION)):
            raise ValueError(f"trusted document {digest[:16]}... must be one query or mutation "
                             "whose SHA-256 is its key")
        errors = validate_document(self._core, document, self._rules)
        if errors:
            raise ValueError(f"trusted document {digest[:16]}... does not validate: "
                             f"{errors[0].message}")
        name = ops[0].name.value if ops[0].name else None
        return _Prepared(document, name, text, self._compile(document, name or digest[:16],
                                                               logging.INFO))

    def _compile(self, document: DocumentNode, name: str | None,
                 level: int = logging.DEBUG) -> Plan | None:
        """The plan of a validated document, or None (it runs on graphql-core) when the
        compiler does not plan it: the answer is the same either way."""
        try:
            return compile_operation(self.schema, document)
        except Unsupported as exc:
            log.log(level, "document %s runs uncompiled: %s", name or "(anonymous)", exc)
            return None

    def _persisted(self, data: dict[str, Any], extensions: Any) -> _Prepared | None:
        """The trusted document ``extensions.persistedQuery`` names; None when the request
        has no such reference (or sends an unregistered document with its own hash: then it
        is an ad-hoc document). Raises ``_Refused`` for an unknown or malformed reference."""
        reference = extensions.get("persistedQuery") if type(extensions) is dict else None
        if reference is None:
            return None
        digest = reference.get("sha256Hash") if type(reference) is dict else None
        # A registered hash is well formed: only another one is matched against the pattern.
        if (type(reference) is not dict or reference.get("version") != 1
                or type(digest) is not str
                or (digest not in self._trusted and not _SHA256.fullmatch(digest))):
            raise _Refused("extensions.persistedQuery needs version 1 and a sha256Hash (64 "
                           "lowercase hex digits)", "BAD_USER_INPUT")
        query = data.get("query")
        if query is not None and (type(query) is not str or document_hash(query) != digest):
            raise _Refused("provided sha does not match query", "BAD_USER_INPUT")
        prepared = self._trusted.get(digest)
        if prepared is None and query is None:
            raise _Refused("PersistedQueryNotFound", "BAD_USER_INPUT",
                           detail="no registered (trusted) document has this sha256Hash")
        return prepared

    def _plan(self, body: bytes) -> tuple[_Prepared, dict[str, Any] | None, str | None] | None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict:
            return None
        query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
        if ((variables is not None and type(variables) is not dict)
                or (name is not None and type(name) is not str)):
            return None
        extensions = data.get("extensions")
        if extensions is not None:
            prepared = self._persisted(data, extensions)
            if prepared is not None:
                if name is not None and name != prepared.name:
                    raise _Refused(f"operationName {name!r} is not the registered document's "
                                   "operation", "BAD_USER_INPUT")
                return prepared, variables, name
            return None
        if not self.enabled or type(query) is not str:
            return None
        prepared = self._prepare(query)
        if prepared is None or (name is not None and name != prepared.name):
            return None
        return prepared, variables, name

    async def _may_send_ad_hoc(self, scope: Scope, receive: Receive) -> bool:
        """Admins and partners may send ad-hoc documents; anyone else (a bad token too) may
        not while ``trusted_documents_only`` is set."""
        if not self._trusted_only:
            return True
        ctx = await build_context(self.rt, Request(scope, receive))
        return ctx.principal is not None and ctx.principal.role in _AD_HOC_ROLES

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type, accept = first_values(scope, b"content-type", b"accept")
        if (scope["type"] != "http" or scope["method"] != "POST"
                or not content_type.startswith(b"application/json")
                or b"multipart" in accept):
            if scope["type"] == "http" and not await self._may_send_ad_hoc(scope, receive):
                await _answer(send, _Refused(_AD_HOC_REFUSED, "FORBIDDEN").payload)
                return
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

        try:
            plan = self._plan(body)
        except _Refused as refused:
            await _answer(send, refused.payload)
            return
        if (plan is None or plan[0].text is None) and not await self._may_send_ad_hoc(
                scope, replay):
            await _answer(send, _Refused(_AD_HOC_REFUSED, "FORBIDDEN").payload)
            return
        if plan is None:
            await self.view(scope, replay, send)
            return
        prepared, variables, name = plan
        if not self.enabled:  # a trusted document, through the view as its registered text
            body = orjson.dumps({"query": prepared.text, "variables": variables,
                                 "operationName": name})
            await self.view(scope, replay, send)
            return
        ctx = await build_context(self.rt, Request(scope, replay))
        result: Any
        if prepared.plan is not None and self.compiled:
            result = await prepared.plan.execute(ctx, variables)
        else:
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
        await _answer(send, orjson.dumps(payload))


async def _answer(send: Send, out: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(out)).encode()),
                            (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})
