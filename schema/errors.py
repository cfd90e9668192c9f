"""Every GraphQL error leaves with ``extensions.code`` from the contract's closed list.

Domain errors keep their message and extensions; errors GraphQL itself raises before
execution (syntax, validation, argument coercion) are BAD_USER_INPUT; anything else is
INTERNAL with a generic message and the request id, and is logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from tortoise.exceptions import ValidationError as OrmValidationError

from api.core.errors import BadInput, ConsentryError

__all__ = ["ErrorCodes", "classify", "ensure_codes"]

log = logging.getLogger("consentry.graphql")

_INPUT_ERRORS: tuple[type[BaseException], ...] = (OrmValidationError,)
try:  # asyncpg rejects NUL bytes and over-long values with DataError subclasses
    from asyncpg.exceptions import DataError as PgDataError

    _INPUT_ERRORS += (PgDataError,)
except ImportError:  # pragma: no cover
    pass


def _caused_by_input(exc: BaseException | None) -> bool:
    """True when the database refused a value (the ORM wraps driver errors, so walk causes)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, _INPUT_ERRORS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def classify(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, ConsentryError):
        ext = {"code": original.code, **original.extensions}
        return GraphQLError(original.message, error.nodes, error.source, error.positions,
                            error.path, None, ext)
    if _caused_by_input(original):
        return GraphQLError("a value is not acceptable here", error.nodes, error.source,
                            error.positions, error.path, None, {"code": BadInput.code})
    if original is None or error.path is None:
        ext = dict(error.extensions or {})
        ext.setdefault("code", BadInput.code)
        if ext["code"] not in ("BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN"):
            ext["code"] = BadInput.code
        return GraphQLError(error.message, error.nodes, error.source, error.positions,
                            error.path, None, ext)
    log.error("unexpected error in request %s at %s", request_id, error.path,
              exc_info=(type(original), original, original.__traceback__))
    return GraphQLError("internal error", error.nodes, error.source, error.positions, error.path,
                        None, {"code": "INTERNAL", "requestId": request_id})


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
            errors[i] = GraphQLError(error.message, error.nodes, error.source, error.positions,
                                     None, None, {"code": BadInput.code})
        else:
            errors[i] = classify(GraphQLError(error.message, error.nodes, error.source,
                                              error.positions, error.path or ["-"], original),
                                 request_id)
