"""What the application sends to the database and gets back, statement by statement.

Recorded at tortoise's client methods (every dialect and transaction client), outermost calls
only, while the context is open: the SQL text, how many parameter values went with it, how
many rows came back, and whether the database refused it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

_METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many")
_inside = contextvars.ContextVar("inside_statement", default=False)


@dataclass
class Statement:
    sql: str
    params: int
    rows: int
    failed: bool


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _params(method: str, values: Any) -> int:
    if not values:
        return 0
    return sum(len(v) for v in values) if method == "execute_many" else len(values)


def _rows(method: str, result: Any) -> int:
    if method == "execute_query":
        return len(result[1])
    if method == "execute_query_dict":
        return len(result)
    return 0


@contextmanager
def statements() -> Iterator[list[Statement]]:
    seen: list[Statement] = []
    patched: list[tuple[type, str, object]] = []

    def wrap(method: str, original):
        async def recorded(self, query, values=None, *args, **kwargs):
            if _inside.get():
                return await original(self, query, values, *args, **kwargs)
            token = _inside.set(True)
            try:
                result = await original(self, query, values, *args, **kwargs)
            except Exception:
                seen.append(Statement(query, _params(method, values), 0, True))
                raise
            finally:
                _inside.reset(token)
            seen.append(Statement(query, _params(method, values), _rows(method, result), False))
            return result
        return recorded

    for cls in {BaseDBAsyncClient, *_subclasses(BaseDBAsyncClient)}:
        for name in _METHODS:
            if name in cls.__dict__:
                patched.append((cls, name, cls.__dict__[name]))
                setattr(cls, name, wrap(name, cls.__dict__[name]))
    try:
        yield seen
    finally:
        for cls, name, original in reversed(patched):
            setattr(cls, name, original)
