"""Request headers read straight from an ASGI scope, for code on every request's path.

Building starlette's ``Headers`` to ask it for one or two values costs more than the values
themselves; this reads them in one pass over the raw list, as ``Headers.get`` would answer
(the first occurrence of each name wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["first_values"]


def first_values(scope: Mapping[str, Any], *names: bytes) -> list[bytes]:
    """The first value of each of ``names`` (lowercase, as ASGI gives them), ``b""`` for a
    header the request does not carry."""
    found: dict[bytes, bytes] = {}
    for key, value in scope.get("headers", ()):
        if key in names and key not in found:
            found[key] = value
            if len(found) == len(names):
                break
    return [found.get(name, b"") for name in names]
