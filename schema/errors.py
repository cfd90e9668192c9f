"""Every GraphQL error leaves with ``extensions.code`` from the contract's closed list.

Domain errors keep their message and extensions; errors GraphQL itself raises before
execution (syntax, validation, argument coercion) are BAD_USER_INPUT; a database that cannot
be reached is UNAVAILABLE; anything else is INTERNAL with a generic message and the request id.

Logging never carries the document, variables or values (they hold passwords and personal
data, and graphql-core's ``str(error)`` prints the document around the error): each error is
one line with the field, the code and the request id, and an INTERNAL error adds a traceback
with frames and exception types only. :class:`QuietSchema` turns off strawberry's own error
log, which printed the whole document and a traceback for every refused sign-in.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import traceback
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import FieldNode, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from tortoise.exceptions import DBConnectionError
from tortoise.exceptions import ValidationError as OrmValidationError

from api.core.errors import BadInput, ConsentryError, Unavailable

__all__ = ["ErrorCodes", "QuietSchema", "caused_by_outage", "classify", "ensure_codes",
           "safe_traceback"]

log = logging.getLogger("consentry.graphql")

_INPUT_ERRORS: tuple[type[BaseException], ...] = (OrmValidationError,)
# A dependency that is down or refusing connections, not a bug: connection failures at the
# socket, tortoise's connection error, and asyncpg's connection class (08), shutdown and
# start-up (57P01-57P03), too many connections (53300), and the client-side errors asyncpg
# raises on a connection the server dropped mid-operation (seen in tests/test_faults.py).
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError,
                                                   DBConnectionError)
try:  # asyncpg rejects NUL bytes and over-long values with DataError subclasses
    from asyncpg import exceptions as pg

    _INPUT_ERRORS += (pg.DataError,)
    _OUTAGE_ERRORS += (pg.PostgresConnectionError, pg.CannotConnectNowError,
                       pg.AdminShutdownError, pg.CrashShutdownError, pg.TooManyConnectionsError,
                       pg.InterfaceError, pg.InternalClientError)
except ImportError:  # pragma: no cover
    pass
_SQLITE_OUTAGE = re.compile(r"database is locked|unable to open database|disk I/O error")
_REQUEST_ID = re.compile(r"[^A-Za-z0-9._:-]")


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and what caused it (the ORM wraps driver errors), at most five deep."""
    seen = 0
    while exc is not None and seen < 5:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def _caused_by_input(exc: BaseException | None) -> bool:
    """True when the database refused a value."""
    return any(isinstance(e, _INPUT_ERRORS) for e in _causes(exc))


def caused_by_outage(exc: BaseException | None) -> bool:
    """True when the database (or another dependency) could not be reached or went away."""
    return any(isinstance(e, _OUTAGE_ERRORS) or (
        isinstance(e, sqlite3.OperationalError) and _SQLITE_OUTAGE.search(str(e)) is not None)
        for e in _causes(exc))


def safe_traceback(exc: BaseException) -> str:
    """Frames and exception types of ``exc`` and its causes, without their messages.

    Messages are withheld because they can quote the request: a ``GraphQLError`` prints the
    document (with its inline passwords), a ``ValueError`` the value it refused.
    """
    parts = []
    for e in _causes(exc):
        frames = "".join(traceback.format_tb(e.__traceback__))
        parts.append(f"{type(e).__module__}.{type(e).__qualname__} (message withheld)\n{frames}")
    return "stack (most recent call last, exception messages withheld):\n" + (
        "caused by ".join(parts))


def _field(error: GraphQLError) -> str:
    """The schema field an execution error came from; "-" before execution (names in a
    document that failed validation are the client's text, not the schema's)."""
    if error.path is not None and error.nodes and isinstance(error.nodes[0], FieldNode):
        return error.nodes[0].name.value
    return "-"


def _log(field: str, code: str, request_id: str, original: BaseException | None) -> None:
    request = _REQUEST_ID.sub("?", request_id)[:64] or "-"
    if code == "INTERNAL":
        log.error("graphql error field=%s code=%s request=%s\n%s", field, code, request,
                  safe_traceback(original) if original is not None else "")
    elif code == Unavailable.code:
        causes = ",".join(type(e).__qualname__ for e in _causes(original))
        log.warning("graphql error field=%s code=%s request=%s cause=%s", field, code, request,
                    causes or "-")
    else:
        log.info("graphql error field=%s code=%s request=%s", field, code, request)


def _coded(error: GraphQLError, message: str, ext: dict[str, Any], request_id: str,
           original: BaseException | None = None) -> GraphQLError:
    _log(_field(error), ext["code"], request_id, original)
    return GraphQLError(message, error.nodes, error.source, error.positions, error.path, None,
                        ext)


def classify(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, ConsentryError):
        return _coded(error, original.message, {"code": original.code, **original.extensions},
                      request_id)
    if _caused_by_input(original):
        return _coded(error, "a value is not acceptable here", {"code": BadInput.code},
                      request_id)
    if caused_by_outage(original):
        unavailable = Unavailable()
        return _coded(error, unavailable.message,
                      {"code": unavailable.code, **unavailable.extensions}, request_id, original)
    if original is None or error.path is None:
        ext = dict(error.extensions or {})
        ext.setdefault("code", BadInput.code)
        if ext["code"] not in ("BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN"):
            ext["code"] = BadInput.code
        return _coded(error, error.message, ext, request_id)
    return _coded(error, "internal error", {"code": "INTERNAL", "requestId": request_id},
                  request_id, original)


class QuietSchema(strawberry.Schema):
    """strawberry's schema without its error log (``classify`` logs each error safely)."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        return None


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", "-")
        result.errors = [classify(e, request_id) for e in result.errors]


def ensure_codes(errors: list[GraphQLError] | None, request_id: str) -> None:
    """Last guard at the HTTP layer for errors raised outside ``on_operation``.

    strawberry's ParserCache parses inside an extension hook, so a syntax error (or a document
    over the token limit) skips :class:`ErrorCodes`; anything else that got this far unclassified
    is a bug and is masked as INTERNAL.
    """
    if not errors:
        return
    for i, error in enumerate(errors):
        if (error.extensions or {}).get("code"):
            continue
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            errors[i] = _coded(GraphQLError(error.message, error.nodes, error.source,
                                            error.positions), error.message,
                               {"code": BadInput.code}, request_id)
        else:
            errors[i] = classify(GraphQLError(error.message, error.nodes, error.source,
                                              error.positions, error.path or ["-"], original),
                                 request_id)
