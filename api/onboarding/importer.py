"""Bulk import of members (``consentry import members FILE``): all or nothing, resumable,
idempotent.

1. Every row is judged before anything is written (:mod:`api.onboarding.rows`, plus the store:
   an email another member already uses). One bad row and nothing is written.
2. Rows are written in batches, each in one transaction that also advances the file's
   checkpoint (:class:`MemberImport`, keyed by the file's SHA-256), so a run that dies resumes
   after its last committed batch and never writes a batch twice.
3. A member whose user id is already in the store is skipped, not duplicated: rerunning a file,
   or importing an overlapping one, changes nothing for them.

Each member gets its own data key and blind indexes as ``register`` gives them, but no password:
the stored hash is an argon2 hash of a random secret thrown away at once (sign-in fails for
every password, at the same cost as a real check), and an :class:`ImportedMember` row marks
them for the password-reset flow. Consents keep their original time; their receipts say
``"source": "import"`` (``iat`` is the import). One audit entry per batch lists its members.
No ``ConsentChanged`` event is published: partners learn of imported members from the
``sharing_catch_up`` job (push) or their next page (pull).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api.consent import policy, receipts
from api.consent.purposes import list_purposes
from api.core.errors import Conflict
from api.core.ordered_ids import ordered_uuid
from api.models.consent import ConsentEvent, PolicyVersion
from api.models.enums import ConsentState, MemberStatus
from api.models.member import Member, MemberKey
from api.models.onboarding import ImportedMember, MemberImport
from api.models.partner import Purchase
from api.onboarding.formats import ParsedFile, Rejection
from api.onboarding.rows import Context, MemberRecord, judge
from api.platform import audit
from api.platform.db import insert_rows
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index
from api.security.envelope import new_data_key
from api.security.passwords import hash_password
from api.sharing.purchases import REFERENCE_LABEL

__all__ = ["ImportRejected", "Summary", "Progress", "import_members", "DEFAULT_BATCH",
           "IMPORT_SOURCE"]

DEFAULT_BATCH = 500
IMPORT_SOURCE = "import"
_CHUNK = 500  # blind indexes per store lookup

Progress = Callable[[int, int], None]
"""Called after each committed batch with (rows done, rows in the file)."""


class ImportRejected(Exception):
    """The file cannot be imported; nothing was written."""

    def __init__(self, rejections: list[Rejection]) -> None:
        super().__init__(f"{len(rejections)} row(s) rejected")
        self.rejections = rejections


@dataclass
class Summary:
    sha256: str
    rows: int
    imported: int = 0
    skipped: int = 0
    consents: int = 0
    purchases: int = 0
    resumed_after: int = 0  # batches a previous run had committed
    already_done: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class _Indexed:
    record: MemberRecord
    user_id_idx: str
    email_idx: str


async def _context(rt: Runtime) -> Context:
    await policy.ensure_initial_policy(rt)
    purposes = {p.name: p for p in await list_purposes(rt)}
    policies = {row.version: row.effective_at for row in await PolicyVersion.all()}
    return Context(rt.now(), purposes, policies)


async def _owners(column: str, values: list[str]) -> dict[str, str]:
    """blind index -> the member's user id index, for those present in the store."""
    found: dict[str, str] = {}
    for start in range(0, len(values), _CHUNK):
        chunk = values[start:start + _CHUNK]
        rows = await Member.filter(**{f"{column}__in": chunk}).values_list(column, "user_id_idx")
        found.update({str(v): str(owner) for v, owner in rows})
    return found


async def _check_store(items: list[_Indexed]) -> list[Rejection]:
    """An email may only be in the store already as the same member's (who is then skipped)."""
    owners = await _owners("email_idx", [i.email_idx for i in items])
    return [Rejection(i.record.line, "email", "another member already uses this email")
            for i in items if i.email_idx in owners and owners[i.email_idx] != i.user_id_idx]


def _rows_for(rt: Runtime, item: _Indexed, now: datetime, password_hash: str, sha: str,
              out: dict[str, list[dict[str, Any]]]) -> str:
    r = item.record
    member_id = uuid.uuid4()
    owner = str(member_id)
    key, wrapped, version = new_data_key(rt.keys, owner)
    dob = r.date_of_birth.isoformat() if r.date_of_birth else None
    out["keys"].append({"member_id": member_id, "wrapped": wrapped, "kek_version": version})
    out["members"].append({
        "id": member_id, "status": MemberStatus.ACTIVE, "created_at": now, "last_active_at": now,
        "password_hash": password_hash, "user_id_idx": item.user_id_idx,
        "email_idx": item.email_idx, "user_id_ct": key.encrypt("user_id", r.user_id),
        "email_ct": key.encrypt("email", r.email),
        "full_name_ct": key.encrypt("full_name", r.full_name),
        "date_of_birth_ct": key.encrypt_optional("date_of_birth", dob),
        "phone_ct": key.encrypt_optional("phone", r.phone),
        "address_ct": key.encrypt_optional("address", r.address),
        "has_purchase": bool(r.purchases), "dormancy_notified_at": None, "dormant_since": None,
        "withdrawn_at": None, "email_verified_at": None, "pending_email_ct": None,
        "user_id_folded": True})
    for c in r.consents:
        event_id = ordered_uuid()
        receipt = receipts.issue(
            rt.keys, receipt_id=str(event_id), member_id=owner, issuer=rt.settings.issuer,
            controller=rt.settings.controller, purpose=c.purpose.name,
            legal_basis=c.purpose.legal_basis, policy_version=c.policy_version,
            state=ConsentState.GIVEN, at=c.at, collection=c.source, issued_at=now,
            source=IMPORT_SOURCE)
        out["consents"].append({
            "id": event_id, "member_id": member_id, "purpose": c.purpose.name,
            "state": ConsentState.GIVEN, "policy_version": c.policy_version, "at": c.at,
            "client_ct": None, "user_agent_ct": None, "receipt": receipt})
    for p in r.purchases:
        out["purchases"].append({
            "id": uuid.uuid4(), "member_id": member_id, "amount": p.amount,
            "currency": p.currency, "reference_ct": key.encrypt(REFERENCE_LABEL, p.reference),
            "at": p.at})
    out["imported"].append({"member_id": member_id, "file_sha256": sha, "imported_at": now,
                            "password_set_at": None})
    return owner


async def _write_batch(rt: Runtime, sha: str, index: int, batch: list[_Indexed],
                       password_hash: str, summary: Summary) -> None:
    present = set(await _owners("user_id_idx", [i.user_id_idx for i in batch]))
    fresh = [i for i in batch if i.user_id_idx not in present]
    now = rt.now()
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("keys", "members", "consents",
                                                             "purchases", "imported")}
    ids = [_rows_for(rt, i, now, password_hash, sha, rows) for i in fresh]
    skipped = len(batch) - len(fresh)
    try:
        async with in_transaction("default") as conn:
            # The checkpoint moves first: a second run of the same file waits here (row lock
            # on PostgreSQL, the single writer on SQLite), then finds the batch taken.
            claimed = await MemberImport.filter(file_sha256=sha, batches_done=index).using_db(
                conn).update(batches_done=index + 1, imported=F("imported") + len(fresh),
                             skipped=F("skipped") + skipped, updated_at=now)
            if not claimed:
                raise Conflict("another run is importing this file")
            await insert_rows(conn, MemberKey, rows["keys"])
            await insert_rows(conn, Member, rows["members"])
            await insert_rows(conn, ConsentEvent, rows["consents"])
            await insert_rows(conn, Purchase, rows["purchases"])
            await insert_rows(conn, ImportedMember, rows["imported"])
            if ids:
                await audit.record(rt, "cli", "member.import", f"import:{sha}", {
                    "imported": True, "batch": index + 1, "members": ids,
                    "consents": len(rows["consents"]), "purchases": len(rows["purchases"]),
                    "skipped": skipped}, using=conn)
    except IntegrityError:
        raise Conflict("a member of this batch was added by someone else meanwhile; run the "
                       "import again (it resumes and skips them)") from None
    summary.imported += len(fresh)
    summary.skipped += skipped
    summary.consents += len(rows["consents"])
    summary.purchases += len(rows["purchases"])


async def _checkpoint(rt: Runtime, parsed: ParsedFile, rows: int, batch_size: int) -> MemberImport:
    now = rt.now()
    try:
        return await MemberImport.create(file_sha256=parsed.sha256, file_format=parsed.file_format,
                                         rows=rows, batch_size=batch_size, started_at=now,
                                         updated_at=now)
    except IntegrityError:
        return await MemberImport.get(file_sha256=parsed.sha256)


async def import_members(rt: Runtime, parsed: ParsedFile, *, batch_size: int = DEFAULT_BATCH,
                         progress: Progress | None = None) -> Summary:
    """Import a parsed file; raises :class:`ImportRejected` (nothing written) when any row is
    bad. A file whose import finished before is not read again."""
    started = time.monotonic()
    done = await MemberImport.get_or_none(file_sha256=parsed.sha256)
    if done is not None and done.finished_at is not None:
        return Summary(parsed.sha256, done.rows, already_done=True)
    records, rejections = judge(parsed.rows, await _context(rt))
    # The user id's index is of its case-folded form, as at registration (api/members/user_ids.py)
    items = [_Indexed(r, blind_index(rt.keys, "user_id", r.user_id.casefold()),
                      blind_index(rt.keys, "email", r.email)) for r in records]
    rejections = parsed.rejections + rejections + await _check_store(items)
    if rejections:
        raise ImportRejected(sorted(rejections, key=lambda r: r.line))
    checkpoint = await _checkpoint(rt, parsed, len(items), batch_size)
    size = checkpoint.batch_size  # a resumed run cuts the file exactly as the first one did
    summary = Summary(parsed.sha256, len(items), resumed_after=checkpoint.batches_done)
    password_hash = await hash_password(secrets.token_urlsafe(32))  # nobody ever knows this secret
    batches = [items[i:i + size] for i in range(0, len(items), size)]
    for index in range(checkpoint.batches_done, len(batches)):
        await _write_batch(rt, parsed.sha256, index, batches[index], password_hash, summary)
        if progress is not None:
            progress(min((index + 1) * size, len(items)), len(items))
    await MemberImport.filter(file_sha256=parsed.sha256, finished_at=None).update(
        finished_at=rt.now(), updated_at=rt.now())
    summary.seconds = time.monotonic() - started
    return summary
