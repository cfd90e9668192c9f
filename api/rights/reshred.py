"""After a restore: destroy again every member the shred log lists (``consentry restore reshred``).

A restored backup may predate destructions; the shred log (:mod:`api.rights.shred_log`), kept
apart from the backups, says which. Each listed member still in the restored main store goes
through :func:`api.rights.erasure.destroy` again in replay mode: key shredded, rows deleted,
sessions revoked, partners sent ``member.erasure`` again (harmless when they had it already, and
needed when the restored outbox lost it), but no second confirmation mail, no second erasure
request and no new log line. A DORMANT vault record of a listed member is shredded even when the
main store no longer holds the member (stores restored from different points in time). Tax
records (reason TAX) are kept: the law requires them, and the retention job ends them on time.

Idempotent: a second run finds nothing left to destroy.
"""

from __future__ import annotations

import logging
from pathlib import Path

from api.core.errors import NotFound
from api.members import vault
from api.models.member import Member
from api.models.vault import RetainedRecord
from api.platform.runtime import Runtime
from api.rights import shred_log
from api.rights.erasure import destroy

__all__ = ["ACTOR", "reshred"]

log = logging.getLogger("consentry.reshred")

ACTOR = "system:reshred"


async def reshred(rt: Runtime, logs: list[Path]) -> dict[str, int]:
    """Replay the logs against the current stores; counts of what was found and done."""
    entries = shred_log.read(logs)
    counts = {"logged": len(entries.members), "destroyed": 0, "absent": 0, "vaultShredded": 0,
              "failed": 0, "malformed": entries.malformed}
    for member_id in entries.members:
        if await Member.exists(id=member_id):
            try:
                await destroy(rt, member_id, actor=ACTOR, replay=True)
            except NotFound:  # destroyed by someone else meanwhile
                counts["absent"] += 1
            except Exception as exc:  # one bad member must not stop the others; reported
                log.error("re-destruction failed: %s", type(exc).__name__)
                counts["failed"] += 1
                continue
            else:
                counts["destroyed"] += 1
        else:
            counts["absent"] += 1
        for record_id in await RetainedRecord.filter(
                member_id=member_id, reason=vault.DORMANT,
                wrapped_key__isnull=False).values_list("id", flat=True):
            if await vault.shred(str(record_id)):
                counts["vaultShredded"] += 1
    return counts
