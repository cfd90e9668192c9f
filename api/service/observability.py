"""What each request leaves behind: one log line and the request metrics.

:class:`RequestObserver` (outermost ASGI middleware) times the request, gives it a request id
(the client's ``x-request-id`` when it is short and plain, else a new one, passed on to the
GraphQL context and echoed in the response), and when the answer is sent records, with bounded
labels only:

- ``route``: the contract's paths, else ``other``; ``status``: the HTTP status;
- for ``/graphql``, ``operation``: the one top-level field the document selects if it is a
  field of the schema, ``multiple`` for several, ``other`` otherwise (never the client's
  operation name or aliases); ``code``: ``OK``, the first error's contract code, or
  ``http_<status>`` for a refusal without a GraphQL body;
- ``role``: anonymous, member, admin, partner (with the partner's id) or invalid (a bearer
  token that did not verify). Never a member id, a personal value, a token or query text.

Both ways into GraphQL tell the observer the operation (:func:`note_operation`); the caller is
known from the context when strawberry's view builds it (:func:`note_caller`), else it is read
from the verified-token cache after the answer has left.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.errors import ConsentryError
from api.core.headers import first_values
from api.platform.metrics import metrics_of
from api.platform.runtime import Runtime
from api.security.tokens import Principal
from schema import LIMITS
from schema.context import principal_for
from schema.fastpath import FastGraphQL

__all__ = ["CODES", "ROUTES", "ObservedFastGraphQL", "OperationLabels", "RequestObserver",
           "note_caller", "note_operation"]

log = logging.getLogger("consentry.request")

ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/.well-known/jwks.json", "/oauth/token",
                    "/metrics"})
CODES = frozenset({"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT",
                   "RATE_LIMITED", "UNAVAILABLE", "INTERNAL"})
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_ROLES = {"MEMBER": "member", "ADMIN": "admin", "PARTNER": "partner"}
_LABEL_CACHE = 512


@dataclass(slots=True)
class _Observation:
    operation: str | None = None
    code: str | None = None
    role: str | None = None
    partner: str | None = None


_current: ContextVar[_Observation | None] = ContextVar("consentry_request", default=None)


def note_operation(label: str) -> None:
    """The operation label of the current request (a second, different one is ``multiple``)."""
    obs = _current.get()
    if obs is not None:
        obs.operation = label if obs.operation in (None, label) else "multiple"


def note_caller(principal: Principal | None, auth_error: object | None) -> None:
    """The caller of the current request, as the GraphQL context decided it."""
    obs = _current.get()
    if obs is not None:
        obs.role, obs.partner = _role(principal) if auth_error is None else ("invalid", None)


def _role(principal: Principal | None) -> tuple[str, str | None]:
    if principal is None:
        return "anonymous", None
    role = _ROLES.get(principal.role, "other")
    return role, principal.subject if role == "partner" else None


class OperationLabels:
    """Documents to bounded labels: top-level field names checked against the schema."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self._roots = {
            OperationType.QUERY: frozenset(schema.query_type.fields if schema.query_type else ()),
            OperationType.MUTATION: frozenset(
                schema.mutation_type.fields if schema.mutation_type else ()),
        }
        self._texts: OrderedDict[str, str] = OrderedDict()

    def of_document(self, document: DocumentNode, name: str | None = None) -> str:
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
               and (name is None or (d.name is not None and d.name.value == name))]
        if len(ops) != 1:
            return "other"
        roots = self._roots.get(ops[0].operation, frozenset())
        fields = set()
        for selection in ops[0].selection_set.selections:
            if not isinstance(selection, FieldNode):
                return "other"
            if selection.name.value != "__typename":
                fields.add(selection.name.value)
        if not fields or not fields <= roots:
            return "other"
        return fields.pop() if len(fields) == 1 else "multiple"

    def of_query(self, query: object, name: object = None) -> str:
        """``of_document`` of a query text, remembered for the last 512 distinct texts."""
        if not isinstance(query, str) or not (name is None or isinstance(name, str)):
            return "other"
        key = f"{name}\0{query}" if name else query
        found = self._texts.get(key)
        if found is None:
            try:
                found = self.of_document(parse(query, max_tokens=LIMITS["tokens"]), name)
            except GraphQLError:
                found = "other"
            self._texts[key] = found
            if len(self._texts) > _LABEL_CACHE:
                self._texts.popitem(last=False)
        return found


class ObservedFastGraphQL(FastGraphQL):
    """The fast path, telling the observer which operation it runs."""

    def __init__(self, view: Any, rt: Runtime, labels: OperationLabels) -> None:
        super().__init__(view, rt)
        self.labels = labels

    def _plan(self, body: bytes) -> Any:
        plan = super()._plan(body)
        if plan is not None:
            prepared, _, name = plan
            # The label depends on the document and the operation name only: derived once per
            # prepared document (it lives as long as the document stays cached).
            label = prepared.memo.get(name)
            if label is None:
                label = prepared.memo[name] = self.labels.of_document(prepared.document, name)
            note_operation(label)
        return plan


def _code(status: int, body: bytes) -> str:
    """``OK``, the first GraphQL error's code (contract codes only), or ``http_<status>``."""
    if b'"errors"' in body:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            extensions = errors[0].get("extensions")
            code = extensions.get("code") if isinstance(extensions, dict) else None
            return code if code in CODES else "other"
    return "OK" if status == 200 else f"http_{status}"


class RequestObserver:
    """Outermost middleware: request id, one ``request`` log line, request metrics."""

    def __init__(self, app: ASGIApp, *, rt: Runtime) -> None:
        self.app, self.rt = app, rt
        self.metrics = metrics_of(rt)
        # The labelled series of each (route, status, operation, code): finding a child by
        # its labels is most of the cost of counting; the label sets are bounded, so is this.
        self._series: dict[tuple[str, int, str, str], tuple[Any, ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        (given,) = first_values(scope, b"x-request-id")
        if _REQUEST_ID.fullmatch(given):
            request_id = given
        else:
            request_id = os.urandom(16).hex().encode()
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope.get("headers", ()) if k != b"x-request-id"
                                ] + [(b"x-request-id", request_id)]
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"
        obs = _Observation()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            elif message["type"] == "http.response.body" and obs.code is None:
                obs.code = _code(status, message.get("body", b""))
            await send(message)

        reset = _current.set(obs)
        try:
            await self.app(scope, receive, observed_send)
        finally:
            _current.reset(reset)
            try:
                self._record(scope, route, status, obs, request_id.decode(),
                             time.perf_counter() - started)
            except Exception:  # observing must never break an answer
                log.warning("request observation failed", exc_info=True)

    def _record(self, scope: Scope, route: str, status: int, obs: _Observation,
                request_id: str, seconds: float) -> None:
        code = obs.code or ("OK" if status == 200 else f"http_{status}")
        operation = obs.operation or "other"
        key = (route, status, operation, code)
        series = self._series.get(key)
        if series is None:
            m = self.metrics
            series = self._series[key] = (m.http_requests.labels(route, str(status)),) + ((
                m.graphql_requests.labels(operation, code), m.graphql_seconds.labels(operation))
                if route == "/graphql" else ())
        series[0].inc()
        if len(series) == 3:
            series[1].inc()
            series[2].observe(seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        if obs.role is None:
            obs.role, obs.partner = self._caller(scope, code)
        extra: dict[str, Any] = {"request_id": request_id, "route": route, "status": status,
                                 "duration_ms": round(seconds * 1000, 2), "role": obs.role}
        if route == "/graphql":
            extra.update(operation=operation, code=code)
        if obs.partner:
            extra["partner"] = obs.partner
        log.info("request", extra=extra)

    def _caller(self, scope: Scope, code: str) -> tuple[str, str | None]:
        """The caller from the bearer token, read after the answer: a token the request
        verified is in the token cache; a refused one is not verified again."""
        (header,) = first_values(scope, b"authorization")
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return "anonymous", None
        if not token.strip() or code == "UNAUTHENTICATED":
            return "invalid", None
        try:
            return _role(principal_for(self.rt, token.strip()))
        except ConsentryError:
            return "invalid", None
