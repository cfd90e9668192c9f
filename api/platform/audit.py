"""The hash-chained audit trail: append, page, verify.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(sorted keys, no spaces, UTC ISO times), so editing, deleting or reordering any entry breaks
every later link. Entries name actors and subjects by id only: no personal values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.models.audit import AuditEntry
from api.platform.runtime import Runtime

__all__ = ["record", "verify_chain", "anchor_holds", "ChainBreak", "GENESIS", "entry_hash"]

GENESIS = "0" * 64


def _canonical(seq: int, at: datetime, actor: str, action: str, subject: str | None,
               detail: dict[str, Any]) -> bytes:
    body = {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action,
            "subject": subject, "detail": detail}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, action: str,
               subject: str | None, detail: dict[str, Any]) -> str:
    return hashlib.sha256(
        prev_hash.encode() + _canonical(seq, at, actor, action, subject, detail)
    ).hexdigest()


async def _append(rt: Runtime, conn: BaseDBAsyncClient, actor: str, action: str,
                  subject: str | None, detail: dict[str, Any]) -> AuditEntry:
    if conn.capabilities.dialect == "postgres":
        # Serialises appends across processes for the life of the transaction.
        await conn.execute_query("SELECT pg_advisory_xact_lock(7214001)")
    last = await AuditEntry.all().using_db(conn).order_by("-seq").first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = rt.now()
    digest = entry_hash(prev, seq, at, actor, action, subject, detail)
    return await AuditEntry.create(seq=seq, at=at, actor=actor, action=action, subject=subject,
                                   detail=detail, prev_hash=prev, hash=digest, using_db=conn)


async def record(rt: Runtime, actor: str, action: str, subject: str | None = None,
                 detail: dict[str, Any] | None = None, *,
                 using: BaseDBAsyncClient | None = None) -> AuditEntry:
    """Append an entry, inside the caller's transaction when ``using`` is given.

    Appends are serialised by the database itself: a transaction-scoped advisory lock on
    PostgreSQL, the single writer on SQLite. (An in-process lock on top deadlocked: it was
    released before the transaction's advisory lock, so a second append in one transaction
    could wait on a coroutine that was waiting on it.)
    """
    detail = detail or {}
    if using is not None:
        return await _append(rt, using, actor, action, subject, detail)
    async with in_transaction("default") as conn:
        return await _append(rt, conn, actor, action, subject, detail)


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


async def verify_chain(batch: int = 1000) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many entries were checked and the first break."""
    prev, expected_seq, checked, after = GENESIS, 1, 0, 0
    conn = connections.get("default")
    while True:
        rows = await AuditEntry.filter(seq__gt=after).order_by("seq").limit(batch).using_db(conn)
        if not rows:
            return checked, None
        for row in rows:
            if row.seq != expected_seq:
                return checked, ChainBreak(expected_seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                return checked, ChainBreak(row.seq, "previous-hash link does not match")
            digest = entry_hash(prev, row.seq, row.at, row.actor, row.action, row.subject,
                                row.detail)
            if digest != row.hash:
                return checked, ChainBreak(row.seq, "entry content does not match its hash")
            prev, expected_seq, checked, after = row.hash, row.seq + 1, checked + 1, row.seq


async def anchor_holds(anchor: str) -> bool:
    """True when entry SEQ still carries HASH. A chain cut back from its end still verifies on
    its own; an anchor kept outside the database (printed by ``audit verify``) catches that."""
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        return False
    return await AuditEntry.filter(seq=int(seq), hash=digest).exists()
