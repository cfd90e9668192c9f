"""Relay-style page info shared by every connection."""

from __future__ import annotations

import strawberry

MAX_PAGE = 100


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def page_size(first: int | None, default: int = 50) -> int:
    from api.core.errors import BadInput

    size = default if first is None else first
    if size < 1 or size > MAX_PAGE:
        raise BadInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    return size
