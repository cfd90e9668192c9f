"""Reading the audit trail page by page (admin): keyset pagination on ``seq``.

Keyset rather than offset so a page is one index range scan however long the trail grows, and
entries appended while an admin pages never shift what the next page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.models.audit import AuditEntry

__all__ = ["AuditPage", "page"]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    has_next: bool


async def page(size: int, after_seq: int | None = None) -> AuditPage:
    """Up to ``size`` entries with ``seq`` above ``after_seq``, oldest first."""
    query = AuditEntry.all()
    if after_seq is not None:
        query = query.filter(seq__gt=after_seq)
    rows = await query.order_by("seq").limit(size + 1)
    return AuditPage(rows[:size], len(rows) > size)
