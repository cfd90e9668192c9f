"""The ``announcements`` job: one notification per reachable member for each announcement.

Announcing (a policy version, a partner change) writes one ``Announcement`` row, so the
request costs the same at 10 members as at a million. This job fans it out by keyset on
member id, ``BATCH`` members per transaction: the transaction reads the cursor, finds where
the batch ends (its last member id and its size, one query), advances the cursor by
compare-and-set on ``batches`` (another worker that read the same cursor updates nothing and
writes nothing) and writes that batch's notifications with one ``INSERT ... SELECT``. A crash
loses at most the batch in flight, which rolls back and is done again. Only members that
existed when the announcement was made are notified (a later member reads the policy when
joining).

The rows are made by the database: loading each batch's ids into Python and inserting rows
built there cost the worker 30-55 s of CPU at a million members, in the process that also
delivers partner events and mail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.models.announcements import Announcement
from api.models.enums import MemberStatus
from api.platform import plain_reads
from api.platform.runtime import Runtime

__all__ = ["BATCH", "fan_out", "fan_out_batch"]

BATCH = 5000
_BEFORE_ALL = "00000000-0000-0000-0000-000000000000"  # no member id is the nil UUID

# The members an announcement reaches (made by $1, not withdrawn ($2)) after the cursor ($3):
# the batch's last member id and its size, at most $4 (no row: nothing left) ...
_BOUND = ("SELECT b.id AS last, count(*) OVER () AS n FROM (SELECT m.id FROM members m "
          "WHERE m.created_at <= $1 AND m.status <> $2 AND m.id > $3 ORDER BY m.id LIMIT $4) b "
          "ORDER BY b.id DESC LIMIT 1")
# ... then their notifications, up to that last id ($4 now), made by the database. PostgreSQL
# counts them through a CTE (asyncpg's execute_query reports an INSERT's oid, not its row
# count); SQLite reports the rows an INSERT changed.
_INSERT = ("INSERT INTO notifications (id, member_id, kind, subject, body, status, attempts, "
           "next_attempt_at, created_at) "
           "SELECT gen_random_uuid(), m.id, $5, $6, $7, 'PENDING', 0, $8, $8 FROM members m "
           "WHERE m.created_at <= $1 AND m.status <> $2 AND m.id > $3 AND m.id <= $4")
_INSERT_PG = f"WITH ins AS ({_INSERT} RETURNING 1) SELECT count(*) AS n FROM ins"  # noqa: S608 (constants)
# A random (version 4) UUID in the text form tortoise stores on SQLite.
_SQLITE_UUID = ("lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || "
                "substr('89ab', 1 + (abs(random()) % 4), 1) || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))")
_INSERT_SQLITE = _INSERT.replace("gen_random_uuid()", _SQLITE_UUID)


async def _bound(conn: BaseDBAsyncClient, params: list[Any]) -> tuple[str | None, int]:
    rows = await conn.execute_query_dict(plain_reads.for_dialect(_BOUND, conn.capabilities.dialect), params)
    return (str(rows[0]["last"]), int(rows[0]["n"])) if rows else (None, 0)


async def _insert(conn: BaseDBAsyncClient, params: list[Any]) -> int:
    if conn.capabilities.dialect == "postgres":
        return int((await conn.execute_query_dict(_INSERT_PG, params))[0]["n"])
    written, _ = await conn.execute_query(plain_reads.for_dialect(_INSERT_SQLITE, "sqlite"), params)
    return written


async def fan_out_batch(rt: Runtime, announcement_id: str, batch_size: int = BATCH) -> int | None:
    """Notify the next batch of members; the number written (0 when another worker took
    this batch), or None once the announcement is done."""
    async with in_transaction("default") as conn:
        row = await Announcement.filter(id=announcement_id).using_db(conn).first()
        if row is None or row.done_at is not None:
            return None
        reached: list[Any] = [row.created_at, MemberStatus.WITHDRAWN.value,
                              str(row.cursor) if row.cursor is not None else _BEFORE_ALL]
        last, size = await _bound(conn, [*reached, batch_size])
        now: datetime = rt.now()
        advanced = await Announcement.filter(id=row.id, batches=row.batches).using_db(conn).update(
            batches=row.batches + 1, notified=row.notified + size,
            cursor=last if last is not None else row.cursor,
            done_at=now if size < batch_size else None)
        if not advanced or last is None:
            return 0
        written = await _insert(conn, [*reached, last, row.kind, row.subject, row.body, now])
        if written != size:  # a member withdrawn or removed between the two statements
            await Announcement.filter(id=row.id).using_db(conn).update(
                notified=row.notified + written)
    return written


async def fan_out(rt: Runtime, batch_size: int = BATCH) -> dict[str, int]:
    """Fan out every announcement not yet done, oldest first; returns the counts."""
    pending = await Announcement.filter(done_at__isnull=True).order_by(
        "created_at").values_list("id", flat=True)
    counts = {"announcements": 0, "notified": 0}
    for announcement_id in pending:
        while (written := await fan_out_batch(rt, str(announcement_id), batch_size)) is not None:
            counts["notified"] += written
        counts["announcements"] += 1
    return counts
