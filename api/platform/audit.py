"""The hash-chained audit trail: append, page, verify.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(sorted keys, no spaces, UTC ISO times), so editing, deleting or reordering any entry breaks
every later link. Entries name actors and subjects by id only: no personal values.

Appending and chaining are separate on PostgreSQL so that no writer waits on a global lock: a
request appends its entry in its own transaction with no hash (``seq`` from the database: a
gap-tolerant order of arrival), and ``chain_pending`` later gives committed entries their
place (``pos``) and hashes, one short transaction at a time. Verification walks ``pos``.

The window: an entry deleted (or edited) after its transaction commits and before it is
chained leaves no trace, exactly like the newest entries of any chain without an outside
anchor. The worker chains every cycle, so the window is about one worker cycle (an entry
appended on its own is chained at once); ``audit verify`` chains first and then reports
what is still unchained (transactions still open). SQLite, one writer by design, chains
each entry in the transaction that appends it: no window there.
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

__all__ = ["record", "chain_pending", "unchained", "verify_chain", "anchor_holds", "head",
           "ChainBreak", "GENESIS", "entry_hash"]

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
    # No lock: the database hands out ``seq``; the entry is chained later (``chain_pending``).
    entry = await AuditEntry.create(at=rt.now(), actor=actor, action=action, subject=subject,
                                    detail=detail, prev_hash="", hash="", using_db=conn)
    if conn.capabilities.dialect == "sqlite":
        # SQLite has one writer anyway: chain at once, in the same transaction (a chaining
        # worker would only add write transactions competing with the API's).
        await _link(conn, 1000)
    return entry


async def record(rt: Runtime, actor: str, action: str, subject: str | None = None,
                 detail: dict[str, Any] | None = None, *,
                 using: BaseDBAsyncClient | None = None) -> AuditEntry:
    """Append an entry, inside the caller's transaction when ``using`` is given.

    On PostgreSQL the append takes no lock, so writers in any number of processes never wait
    on each other for the trail. An entry appended in the caller's transaction is chained
    afterwards (by the worker each cycle, by ``audit verify``, or by the next entry appended
    on its own); one appended on its own is chained at once, after its commit.
    """
    detail = detail or {}
    if using is not None:
        return await _append(rt, using, actor, action, subject, detail)
    async with in_transaction("default") as conn:
        entry = await _append(rt, conn, actor, action, subject, detail)
    await chain_pending()
    return entry


async def _link(conn: BaseDBAsyncClient, batch: int) -> int:
    head = await AuditEntry.filter(pos__isnull=False).using_db(conn).order_by("-pos").first()
    pos, prev = (head.pos or 0, head.hash) if head else (0, GENESIS)
    rows = await AuditEntry.filter(pos__isnull=True).using_db(conn).order_by("seq").limit(batch)
    for row in rows:
        pos += 1
        digest = entry_hash(prev, row.seq, row.at, row.actor, row.action, row.subject,
                            row.detail)
        await AuditEntry.filter(seq=row.seq, pos__isnull=True).using_db(conn).update(
            pos=pos, prev_hash=prev, hash=digest)
        prev = digest
    return len(rows)


async def chain_pending(batch: int = 1000) -> int:
    """Link committed, unchained entries into the chain in ``seq`` order; how many were linked.

    One chaining step at a time: on PostgreSQL a transaction-scoped advisory lock taken with
    *try* (a second chainer skips instead of waiting: the first one links its entries too), on
    SQLite the single writer. The lock is held for this short transaction only, never for a
    request's. An entry whose transaction commits after a later ``seq`` was chained simply
    gets the next place: ``pos`` is the order, ``seq`` only the order of arrival.
    """
    linked = 0
    while True:
        async with in_transaction("default") as conn:
            if conn.capabilities.dialect == "postgres":
                got = await conn.execute_query_dict(
                    "SELECT pg_try_advisory_xact_lock(7214001) AS got")
                if not got[0]["got"]:
                    return linked
            elif not await AuditEntry.filter(pos__isnull=True).using_db(conn).exists():
                return linked  # SQLite chains as it appends: don't open a write for nothing
            done = await _link(conn, batch)
        linked += done
        if done < batch:
            return linked


async def unchained() -> int:
    """Entries appended but not chained yet (their transactions may still be open)."""
    return await AuditEntry.filter(pos__isnull=True).count()


@dataclass(frozen=True)
class ChainBreak:
    seq: int  # the place in the chain (``pos``) where it breaks
    reason: str


async def verify_chain(batch: int = 1000, *, chain_first: bool = True
                       ) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many entries were checked and the first break.

    Links what is committed and unchained first (unless ``chain_first`` is off), then checks
    the chained prefix: places 1..n with none missing, each linking its predecessor's hash and
    matching its own. Entries still unchained afterwards are counted by ``unchained``.
    """
    if chain_first:
        await chain_pending()
    prev, expected_seq, checked, after = GENESIS, 1, 0, 0
    conn = connections.get("default")
    while True:
        rows = await (AuditEntry.filter(pos__gt=after).order_by("pos").limit(batch)
                      .using_db(conn))
        if not rows:
            return checked, None
        for row in rows:
            if row.pos != expected_seq:
                return checked, ChainBreak(expected_seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                return checked, ChainBreak(expected_seq, "previous-hash link does not match")
            digest = entry_hash(prev, row.seq, row.at, row.actor, row.action, row.subject,
                                row.detail)
            if digest != row.hash:
                return checked, ChainBreak(expected_seq, "entry content does not match its hash")
            prev, expected_seq, checked, after = row.hash, expected_seq + 1, checked + 1, row.pos


async def anchor_holds(anchor: str) -> bool:
    """True when the entry at chain place SEQ still carries HASH. A chain cut back from its
    end still verifies on its own; an anchor kept outside the database (printed by
    ``audit verify``) catches that."""
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        return False
    return await AuditEntry.filter(pos=int(seq), hash=digest).exists()


async def head() -> str | None:
    """``POS:HASH`` of the newest chained entry: the anchor to keep outside the database."""
    last = await AuditEntry.filter(pos__isnull=False).order_by("-pos").first()
    return f"{last.pos}:{last.hash}" if last else None
