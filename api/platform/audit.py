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
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.transactions import in_transaction

from api.models.audit import AuditEntry
from api.platform.runtime import Runtime

__all__ = ["record", "record_rows_pg", "record_rows_sqlite", "append_sqlite", "Entry",
           "chain_pending", "unchained", "verify_chain", "anchor_holds", "head", "ChainBreak",
           "GENESIS", "entry_hash"]

GENESIS = "0" * 64

_AT = AuditEntry._meta.fields_map["at"]
_DETAIL = AuditEntry._meta.fields_map["detail"]
_INSERT_PG = ('INSERT INTO "audit_entries" ("at", "actor", "action", "subject", "detail", '
              '"prev_hash", "hash") VALUES')
_HEAD_SQLITE = (
    'SELECT (SELECT "seq" FROM "sqlite_sequence" WHERE "name" = \'audit_entries\') AS "issued", '
    '(SELECT MAX("seq") FROM "audit_entries") AS "last", '
    '"pos", "hash", EXISTS (SELECT 1 FROM "audit_entries" WHERE "pos" IS NULL) AS "pending" '
    'FROM (SELECT 1) LEFT JOIN (SELECT "pos", "hash" FROM "audit_entries" '
    'WHERE "pos" IS NOT NULL ORDER BY "pos" DESC LIMIT 1) ON 1')


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
                  subject: str | None, detail: dict[str, Any]) -> None:
    at = _AT.to_db_value(rt.now(), AuditEntry)
    detail_db = _DETAIL.to_db_value(detail, AuditEntry)
    if conn.capabilities.dialect == "postgres":
        # No lock: the database hands out ``seq``; the entry is chained later (``chain_pending``).
        await conn.execute_query(f"{_INSERT_PG} ($1, $2, $3, $4, $5, '', '')",
                                 [at, actor, action, subject, detail_db])
    else:
        # SQLite has one writer anyway: chain at once, in the same transaction (a chaining
        # worker would only add write transactions competing with the API's).
        await _append_chained(conn, [(at, actor, action, subject, detail_db)])


async def record(rt: Runtime, actor: str, action: str, subject: str | None = None,
                 detail: dict[str, Any] | None = None, *,
                 using: BaseDBAsyncClient | None = None) -> None:
    """Append an entry, inside the caller's transaction when ``using`` is given.

    On PostgreSQL the append takes no lock, so writers in any number of processes never wait
    on each other for the trail. An entry appended in the caller's transaction is chained
    afterwards (by the worker each cycle, by ``audit verify``, or by the next entry appended
    on its own); one appended on its own is chained at once, after its commit. SQLite chains
    every entry as it appends it.
    """
    detail = detail or {}
    if using is not None:
        await _append(rt, using, actor, action, subject, detail)
        return
    async with in_transaction("default") as conn:
        await _append(rt, conn, actor, action, subject, detail)
        postgres = conn.capabilities.dialect == "postgres"
    if postgres:
        await chain_pending()


@dataclass(frozen=True)
class Entry:
    """An entry to append: when, who did what to which subject (ids and names only)."""

    at: datetime
    actor: str
    action: str
    subject: str | None
    detail: dict[str, Any]


def _stored(entries: Sequence[Entry]) -> list[tuple[Any, ...]]:
    return [(_AT.to_db_value(e.at, AuditEntry), e.actor, e.action, e.subject,
             _DETAIL.to_db_value(e.detail, AuditEntry)) for e in entries]


def _row_insert(model: type[Model], rows: Sequence[dict[str, Any]]
                ) -> tuple[list[Any], list[Any], str]:
    """The fields, the stored values (row after row) and the quoted column list of ``rows``."""
    meta = model._meta
    fields = [meta.fields_map[name] for name in rows[0]]
    values = [f.to_db_value(row[f.model_field_name], model) for row in rows for f in fields]
    # Table and column names come from the model's metadata, never from input.
    columns = ", ".join(f'"{f.source_field or f.model_field_name}"' for f in fields)
    return fields, values, columns


def record_rows_pg(model: type[Model], rows: Sequence[dict[str, Any]],
                   entries: Sequence[Entry]) -> tuple[str, list[Any]]:
    """The statement (and its values) that inserts ``rows`` of ``model`` (field name -> Python
    value) and appends ``entries``, the audit entries that record them, in one round trip:
    the rows' INSERT as a data-modifying CTE, the entries unchained like every append on
    PostgreSQL. The same rows and entries as ``Model.create`` and :func:`record` one by one,
    without models or a round trip each: for a hot write path (consent changes, grouped;
    ``api/consent/batch_pg.py`` runs it inside its transaction)."""
    fields, values, columns = _row_insert(model, rows)
    stored = _stored(entries)
    width, n = len(fields), len(values)
    marks = ", ".join(
        "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
        for i in range(len(rows)))
    entry_marks = ", ".join(
        f"(${n + 5 * i + 1}, ${n + 5 * i + 2}, ${n + 5 * i + 3}, ${n + 5 * i + 4}, "
        f"${n + 5 * i + 5}, '', '')" for i in range(len(stored)))
    return (f'WITH written AS (INSERT INTO "{model._meta.db_table}" ({columns}) '  # noqa: S608
            f"VALUES {marks}) {_INSERT_PG} {entry_marks}",
            [*values, *(v for e in stored for v in e)])


def record_rows_sqlite(conn: sqlite3.Connection, model: type[Model],
                       rows: Sequence[dict[str, Any]], entries: Sequence[Entry]) -> None:
    """:func:`record_rows_pg` on SQLite, called on the connection's own thread inside the
    caller's ``BEGIN IMMEDIATE`` transaction (``api/platform/sqlite_immediate.py``): the rows,
    then the head of the chain, then the entries inserted already chained (one writer: the
    head read is the head they follow), with no hop to the event loop between them."""
    fields, values, columns = _row_insert(model, rows)
    row_marks = "(" + ", ".join("?" for _ in fields) + ")"
    conn.execute(f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES '  # noqa: S608
                 + ", ".join(row_marks for _ in rows), values)
    append_sqlite(conn, entries)


def append_sqlite(conn: sqlite3.Connection, entries: Sequence[Entry]) -> None:
    """``entries`` appended on SQLite's connection thread, inside the caller's ``BEGIN
    IMMEDIATE`` transaction: the head of the chain read, then the entries inserted already
    chained (one writer: the head read is the head they follow)."""
    stored = _stored(entries)
    head = conn.execute(_HEAD_SQLITE).fetchone()
    if head["pending"]:  # not expected on SQLite; chain in order the slow way
        conn.execute(_INSERT_UNCHAINED + ", ".join(_UNCHAINED_MARKS for _ in stored),
                     [v for e in stored for v in e])
        _link_sqlite(conn)
        return
    conn.execute(_INSERT_CHAINED + ", ".join(_CHAINED_MARKS for _ in stored),
                 _chained(head["issued"], head["last"], head["pos"], head["hash"], stored))


def _link_sqlite(conn: sqlite3.Connection) -> None:
    """:func:`_link` for every unchained entry, on the connection's thread."""
    last = conn.execute('SELECT "pos", "hash" FROM "audit_entries" WHERE "pos" IS NOT NULL '
                        'ORDER BY "pos" DESC LIMIT 1').fetchone()
    rows = conn.execute('SELECT "seq", "at", "actor", "action", "subject", "detail" '
                        'FROM "audit_entries" WHERE "pos" IS NULL ORDER BY "seq"').fetchall()
    unchained = [(r["seq"], _AT.to_python_value(r["at"]), r["actor"], r["action"], r["subject"],
                  _DETAIL.to_python_value(r["detail"])) for r in rows]
    for pos, prev, digest, seq in _links(last["pos"] if last else None,
                                         last["hash"] if last else None, unchained):
        conn.execute('UPDATE "audit_entries" SET "pos" = ?, "prev_hash" = ?, "hash" = ? '
                     'WHERE "seq" = ? AND "pos" IS NULL', [pos, prev, digest, seq])


def _links(pos: int | None, prev: str | None, unchained: Sequence[tuple[Any, ...]]
           ) -> list[tuple[int, str, str, int]]:
    """The place, predecessor hash and hash of each unchained entry (``seq``, ``at``,
    ``actor``, ``action``, ``subject``, ``detail``, in ``seq`` order) after the head of the
    chain (``pos``, ``prev``; none: the genesis): what :func:`_link` and :func:`_link_sqlite`
    write back."""
    pos, prev = (pos or 0, prev) if prev is not None else (0, GENESIS)
    links = []
    for seq, at, actor, action, subject, detail in unchained:
        pos += 1
        digest = entry_hash(prev, seq, at, actor, action, subject, detail)
        links.append((pos, prev, digest, seq))
        prev = digest
    return links


_INSERT_UNCHAINED = ('INSERT INTO "audit_entries" ("at", "actor", "action", "subject", '
                     '"detail", "prev_hash", "hash") VALUES ')
_UNCHAINED_MARKS = "(?, ?, ?, ?, ?, '', '')"
_INSERT_CHAINED = ('INSERT INTO "audit_entries" ("seq", "pos", "at", "actor", "action", '
                   '"subject", "detail", "prev_hash", "hash") VALUES ')
_CHAINED_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _chained(issued: int | None, last: int | None, pos: int | None, prev: str | None,
             stored: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The values of ``stored`` entries placed after the head of the chain (``pos``, ``prev``;
    none: the genesis), numbered after every ``seq`` issued or used, each hashed over its
    predecessor."""
    seq = max(issued or 0, last or 0)
    pos, prev = (pos, prev or GENESIS) if pos is not None else (0, GENESIS)
    values: list[Any] = []
    for at, actor, action, subject, detail in stored:
        seq, pos = seq + 1, pos + 1
        # Hashed as verification will read it back: the stored time and the stored JSON.
        digest = entry_hash(prev, seq, _AT.to_python_value(at), actor, action, subject,
                            _DETAIL.to_python_value(detail))
        values += [seq, pos, at, actor, action, subject, detail, prev, digest]
        prev = digest
    return values


async def _append_chained(conn: BaseDBAsyncClient, stored: Sequence[tuple[Any, ...]]) -> None:
    """SQLite: entries (``at``, actor, action, subject, stored detail) inserted with their
    places and hashes; SQLite writes one transaction at a time, so the head read here is the
    head they follow. One read, one insert."""
    head = (await conn.execute_query_dict(_HEAD_SQLITE))[0]
    if head["pending"]:  # not expected on SQLite; chain in order the slow way
        await conn.execute_insert(_INSERT_UNCHAINED + ", ".join(_UNCHAINED_MARKS for _ in stored),
                                  [v for e in stored for v in e])
        await _link(conn, 1000)
        return
    await conn.execute_insert(_INSERT_CHAINED + ", ".join(_CHAINED_MARKS for _ in stored),
                              _chained(head["issued"], head["last"], head["pos"], head["hash"],
                                       stored))


async def _link(conn: BaseDBAsyncClient, batch: int) -> int:
    head = await AuditEntry.filter(pos__isnull=False).using_db(conn).order_by("-pos").first()
    rows = await AuditEntry.filter(pos__isnull=True).using_db(conn).order_by("seq").limit(batch)
    unchained = [(r.seq, r.at, r.actor, r.action, r.subject, r.detail) for r in rows]
    for pos, prev, digest, seq in _links(head.pos if head else None,
                                         head.hash if head else None, unchained):
        await AuditEntry.filter(seq=seq, pos__isnull=True).using_db(conn).update(
            pos=pos, prev_hash=prev, hash=digest)
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
