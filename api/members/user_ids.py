"""User ids are unique without regard to case: ``Alice`` and ``alice`` are one account.

``members.user_id_idx`` is the keyed blind index of the case-folded id (``user_id_folded``).
Rows written before ids folded case hold the index of the id as it was typed; a migration has
no keys to recompute it, so:

- sign-in looks up both indexes in one query (:func:`find`), preferring a legacy row indexed
  under exactly the spelling typed, and folds that row's index once the password is right
  (:func:`fold_on_sign_in`);
- ``consentry migrate`` runs :func:`fold_legacy`, which decrypts each legacy id and folds its
  index. Two legacy accounts that differ only by case cannot both hold the folded index: the
  one already holding it keeps it, the other keeps its exact-case index (still reachable by its
  exact spelling) and is reported to the operator. Dormant rows (id in the vault) are folded
  at their next sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.exceptions import IntegrityError

from api.core.errors import NotFound
from api.models.enums import MemberStatus
from api.models.member import Member
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index

__all__ = ["index", "find", "fold_on_sign_in", "fold_legacy", "FoldReport"]


def index(rt: Runtime, user_id: str) -> str:
    """The blind index of a user id, whatever its case."""
    return blind_index(rt.keys, "user_id", user_id.strip().casefold())


def _exact(rt: Runtime, user_id: str) -> str:
    return blind_index(rt.keys, "user_id", user_id)


async def find(rt: Runtime, user_id: str) -> Member | None:
    """The member a typed user id names: the legacy row under exactly this spelling if there is
    one, else the row under the folded index."""
    folded, exact = index(rt, user_id), _exact(rt, user_id)
    rows = await Member.filter(user_id_idx__in={folded, exact})
    for row in rows:
        if row.user_id_idx == exact and not row.user_id_folded:
            return row
    return next((row for row in rows if row.user_id_idx == folded), None)


async def fold_on_sign_in(rt: Runtime, member: Member, user_id: str) -> None:
    """After a successful sign-in with ``user_id``: move a legacy row to the folded index
    (left as it is when another account holds it; ``fold_legacy`` reports that)."""
    if member.user_id_folded:
        return
    try:
        await Member.filter(id=member.id, user_id_folded=False).update(
            user_id_idx=index(rt, user_id), user_id_folded=True)
    except IntegrityError:
        pass


@dataclass
class FoldReport:
    folded: int = 0
    dormant: int = 0
    collisions: list[str] = field(default_factory=list)  # member ids left on the exact index


async def fold_legacy(rt: Runtime) -> FoldReport:
    """Fold every legacy row's index (see the module docstring); safe to run again."""
    from api.members import records  # records imports this module

    report = FoldReport()
    rows = await Member.filter(user_id_folded=False).exclude(
        status=MemberStatus.WITHDRAWN).order_by("created_at")
    for row in rows:
        if row.status == MemberStatus.DORMANT or not row.user_id_ct:
            report.dormant += 1
            continue
        try:
            key = await records.data_key(rt, str(row.id))
        except NotFound:
            continue
        folded = index(rt, key.decrypt("user_id", bytes(row.user_id_ct)))
        holder = await Member.filter(user_id_idx=folded).exclude(id=row.id).first()
        if holder is not None:
            report.collisions.append(str(row.id))
            continue
        await Member.filter(id=row.id).update(user_id_idx=folded, user_id_folded=True)
        report.folded += 1
    return report
