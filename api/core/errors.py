"""The domain's exception tree, mapped once to GraphQL ``extensions.code``.

    ConsentryError            (code INTERNAL)
    ├── BadInput              BAD_USER_INPUT   invalid or out-of-policy input
    ├── Unauthenticated       UNAUTHENTICATED  no or bad credentials
    ├── Forbidden             FORBIDDEN        authenticated, but not allowed
    ├── NotFound              NOT_FOUND
    ├── Conflict              CONFLICT         state forbids it (duplicate, already done)
    ├── RateLimited           RATE_LIMITED     slow down; ``retry_after`` seconds
    └── Unavailable           UNAVAILABLE      a dependency (the database) is down; retry later

Messages are written for the client: they never hold secrets or personal data.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadInput",
    "Conflict",
    "ConsentryError",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
]


class ConsentryError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadInput(ConsentryError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str | None = None, **extensions: Any) -> None:
        if field is not None:
            extensions["field"] = field
        super().__init__(message, **extensions)


class Unauthenticated(ConsentryError):
    code = "UNAUTHENTICATED"


class Forbidden(ConsentryError):
    code = "FORBIDDEN"


class NotFound(ConsentryError):
    code = "NOT_FOUND"


class Conflict(ConsentryError):
    code = "CONFLICT"


class RateLimited(ConsentryError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retryAfter=retry_after)
        self.retry_after = retry_after


class Unavailable(ConsentryError):
    """A dependency is down. ``retry_after`` only when known: nobody knows when a database
    that stopped answering will be back, so the default sends no hint."""

    code = "UNAVAILABLE"

    def __init__(self, message: str = "a service this request needs is unavailable; retry later",
                 *, retry_after: int | None = None) -> None:
        if retry_after is None:
            super().__init__(message)
        else:
            super().__init__(message, retryAfter=retry_after)
        self.retry_after = retry_after
