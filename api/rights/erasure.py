"""Membership withdrawal and erasure (Art. 2.2, 4; invariant 7): destruction is irreversible.

One path serves ``withdrawMembership``, an admin-completed ERASURE request and the end of a
dormant member's retention period (:func:`destroy`). In one main-store transaction:

- the member's data key row is deleted (crypto-shred: every ciphertext of the member, including
  undelivered outbox payloads, becomes unreadable), then the member row itself (its blind
  indexes go with it); sessions are revoked;
- consent events, disclosures, purchases and notifications of the member are deleted; cookie
  choices are unlinked from the member (the device keeps its choice); data requests are kept for
  accountability but de-identified (``member_id`` and the encrypted note removed), open ones
  closed as completed;
- undelivered outbox events holding personal payload are deleted, delivered ones lose theirs;
  every partner that ever received data gets a ``member.erasure`` event carrying only its ref
  and the fields it was ever sent (what it must delete; a deletion duty follows);
- mailed account tokens (verification, reset) and their sealed copies are deleted;
- the withdrawal confirmation is queued with the address sealed under the KEK
  (``recipient_ct``); the mailer drops it once the mail is sent or given up.

After the commit the member id is appended to the shred log (:mod:`api.rights.shred_log`), kept
apart from the database backups, so that a restore can destroy the member again
(``consentry restore reshred``, which calls :func:`destroy` with ``replay=True``).

A purchasing member's tax-relevant data (:data:`TAX_FIELDS` and the purchase records, with their
decrypted references) is first written to the vault under its own key, retained until five
years after the last purchase; the retention job destroys it then.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent import receipts
from api.core.errors import NotFound, Unauthenticated
from api.members import dormancy, liveness, notifications, passkeys, sessions, throttle, vault
from api.members import records as members
from api.members.records import MemberView
from api.models.accounts import AccountToken, MailSecret
from api.models.consent import ConsentEvent, CookieChoice
from api.models.enums import DataRequestKind, DataRequestStatus, MemberStatus, OutboxStatus, PersonalField
from api.models.member import Member, MemberKey
from api.models.onboarding import ImportedMember
from api.models.ops import HistoryPurge
from api.models.partner import Disclosure, OutboxEvent, Purchase
from api.models.partner_loop import DeletionDuty
from api.models.rights import DataRequest, Notification
from api.platform import audit, db
from api.platform.runtime import Runtime
from api.rights import shred_log
from api.security.envelope import DataKey
from api.security.passwords import verify_password
from api.security.sealed import seal
from api.sharing import ledger, objections
from api.sharing.outbox import enqueue
from api.sharing.purchases import decrypt_reference
from api.sharing.refs import partner_ref

__all__ = ["Receipt", "TAX_FIELDS", "TAX_YEARS", "DESTROYED", "withdraw", "destroy", "history_purge"]

log = logging.getLogger("consentry.erasure")

# What tax law needs of a purchasing member besides the purchase records themselves: the name
# and address an invoice is made out to. Nothing else is retained.
TAX_FIELDS = (PersonalField.FULL_NAME, PersonalField.ADDRESS)
TAX_YEARS = 5
# What a destruction removes from the main store, named in the signed receipt (categories only).
DESTROYED = ("profile", "data_key", "consent_history", "disclosure_history", "purchases",
             "notifications", "sessions", "passkeys", "undelivered_partner_events")


@dataclass(frozen=True)
class Receipt:
    withdrawn_at: datetime
    destroyed: bool
    retained_until: datetime | None
    retained_fields: list[PersonalField]
    partners_notified: list[str]
    receipt: str = ""  # compact JWS (typ destruction-receipt+jwt); see api.consent.receipts


async def withdraw(rt: Runtime, member_id: str, password: str) -> Receipt:
    """``withdrawMembership``: the password confirms it is the member, then :func:`destroy`."""
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise NotFound("member not found")
    key = throttle.throttle_key(rt, f"withdraw/{member_id}")  # a stolen token cannot guess on
    await throttle.check(rt, key)
    if not isinstance(password, str) or len(password) > 1024 or not await verify_password(
            member.password_hash, password):
        await throttle.record_failure(rt, key)
        raise Unauthenticated("password is wrong")
    await throttle.reset(key)
    return await destroy(rt, member_id, actor=f"member:{member_id}")


async def destroy(rt: Runtime, member_id: str, *, actor: str,
                  request_id: str | None = None, replay: bool = False) -> Receipt:
    """Destroy a member. ``replay``: again, after a restore brought it back (the member was
    told and the request recorded the first time; the shred log already lists it)."""
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise NotFound("member not found")
    view: MemberView | None = None
    key: DataKey | None = None
    dormant_record: str | None = None  # read in the vault, never restored: see open_sealed
    if member.status == MemberStatus.DORMANT:
        opened = await dormancy.open_sealed(rt, member)
        if opened is not None:
            view, key, dormant_record = opened
    else:
        try:
            view, key = await members.get_view(rt, member_id), await members.data_key(rt, member_id)
        except NotFound:
            pass
    if view is None and not replay:
        raise NotFound("member not found")
    # Else a remnant after a restore: a DORMANT row whose vault copy (data and key) is gone.
    # Nothing of it can be read any more; its rows still go.
    now = rt.now()

    partners = await _latest_disclosures(member_id)
    purchases = await Purchase.filter(member_id=member_id).order_by("at")

    retained_until: datetime | None = None
    record_id: str | None = None
    if purchases and view is not None and key is not None:
        retained_until = vault.add_months(max(p.at for p in purchases), 12 * TAX_YEARS)
        data = {
            "format": "consentry.retained/v1",
            "reason": vault.TAX,
            "fields": {f.graphql: view.value(f) for f in TAX_FIELDS},
            "purchases": [{"id": str(p.id), "amount": p.amount, "currency": p.currency,
                           "reference": decrypt_reference(key, p), "at": p.at.isoformat()}
                          for p in purchases],
        }
        record_id = await vault.store(rt, member_id=member_id, reason=vault.TAX, data=data,
                                      retained_until=retained_until)
    notified = sorted({row.partner_name for row, _ in partners.values()})
    try:
        async with in_transaction("default") as conn:
            # First, so a concurrent destruction of the same member waits here and then finds
            # nothing (rolls back, its vault copy shredded) instead of notifying partners twice.
            if not await Member.filter(id=member_id).using_db(conn).delete():
                raise NotFound("member not found")
            await OutboxEvent.filter(member_id=member_id, status=OutboxStatus.PENDING,
                                     payload_ct__isnull=False).using_db(conn).delete()
            await OutboxEvent.filter(member_id=member_id).using_db(conn).update(payload_ct=None)
            for partner_id, (row, sent) in partners.items():
                await enqueue(rt, conn, partner_id=partner_id, member_id=None,
                              type="member.erasure",
                              member={"ref": partner_ref(rt.keys, partner_id, member_id)},
                              fields=sent, purpose=row.purpose,
                              legal_basis=row.legal_basis.value, key=None)
            await DataRequest.filter(member_id=member_id, status=DataRequestStatus.OPEN).using_db(
                conn).update(status=DataRequestStatus.COMPLETED, resolved_at=now,
                             resolution="membership withdrawn: data destroyed")
            if request_id is None and not replay:
                await DataRequest.create(
                    id=uuid.uuid4(), member_id=None, kind=DataRequestKind.ERASURE,
                    status=DataRequestStatus.COMPLETED, fields_=[], received_at=now,
                    due_at=now, resolved_at=now, resolution="membership withdrawn: data destroyed",
                    using_db=conn)
            await DataRequest.filter(member_id=member_id).using_db(conn).update(
                member_id=None, note_ct=None)
            # Consent events and disclosures hold ids and ciphertexts under the key shredded
            # below: the history_purge job deletes them, so this stays constant-time.
            await HistoryPurge.create(member_id=member_id, queued_at=now, using_db=conn)
            await CookieChoice.filter(member_id=member_id).using_db(conn).update(member_id=None)
            await Purchase.filter(member_id=member_id).using_db(conn).delete()
            await _forget_account_mail(conn, member_id)
            await Notification.filter(member_id=member_id).using_db(conn).delete()
            await ImportedMember.filter(member_id=member_id).using_db(conn).delete()
            await passkeys.destroy_for(member_id, conn)
            await objections.forget_member(member_id, conn)
            if view is not None and not replay:
                note_id = uuid.uuid4()
                await Notification.create(
                    id=note_id, member_id=None, kind="membership.withdrawn",
                    subject="Your membership has been withdrawn",
                    body=_confirmation(retained_until, notified),
                    recipient_ct=seal(rt.keys, notifications.recipient_label(str(note_id)),
                                      view.email.encode()),
                    status="PENDING", attempts=0, next_attempt_at=now, created_at=now,
                    using_db=conn)
            await sessions.revoke_subject(rt, member_id, conn)
            await MemberKey.filter(member_id=member_id).using_db(conn).delete()
            await audit.record(rt, actor, "member.withdraw", member_id, {
                "destroyed": record_id is None, "partners": sorted(partners),
                "retainedUntil": retained_until.isoformat() if retained_until else None,
                "vaultRecord": record_id, "request": request_id,
                **({"replay": True} if replay else {})}, using=conn)
    except Exception:
        if record_id is not None:
            await vault.shred(record_id)
        raise
    if dormant_record is not None:
        await vault.shred(dormant_record)
    liveness.forget(rt, member_id)  # the member's tokens are refused from now on
    await db.flush_sqlite()
    if not replay:
        await _log_shred(rt, member_id, now)
    kept = list(TAX_FIELDS) if record_id else []
    signed = receipts.issue_destruction(
        rt.keys, receipt_id=str(uuid.uuid4()), member_id=member_id, issuer=rt.settings.issuer,
        controller=rt.settings.controller, at=now, destroyed=list(DESTROYED),
        retained_fields=[f.graphql for f in kept],
        retained_purchases=len(purchases) if record_id else 0,
        retained_until=retained_until, partners_told=notified)
    return Receipt(now, record_id is None, retained_until, kept, notified, signed)


async def _forget_account_mail(conn: BaseDBAsyncClient, member_id: str) -> None:
    """Mailed account tokens (verification, reset) and the sealed copies waiting in the mail
    queue go with the member: they could no longer be used, but nothing of it may remain."""
    queued = await Notification.filter(member_id=member_id).using_db(conn).values_list(
        "id", flat=True)
    if queued:
        await MailSecret.filter(notification_id__in=list(queued)).using_db(conn).delete()
    await AccountToken.filter(member_id=member_id).using_db(conn).delete()


async def _log_shred(rt: Runtime, member_id: str, at: datetime) -> None:
    """Append to the shred log. The destruction is committed already, so a failure here is
    reported loudly (the operator copies the ``member.withdraw`` audit entries since then into
    the log by hand) instead of telling the member it did not happen."""
    path = rt.settings.shred_log_path
    try:
        await shred_log.append(path, member_id, at)
    except OSError as exc:
        log.error("shred log append failed (%s, %s): a restore would not destroy this member "
                  "again; add it from the member.withdraw audit entries", path,
                  type(exc).__name__)


async def _latest_disclosures(member_id: str) -> dict[str, tuple[Disclosure, list[str]]]:
    """Per partner that ever received the member's data: its latest disclosure (purpose and
    basis of the erasure notice) and every field it was ever sent (what it must delete). One
    query reads the partners and their fields, then one indexed row per partner."""
    received: dict[str, set[str]] = {}
    for partner_id, fields in await Disclosure.filter(
            member_id=member_id, channel__in=ledger.PARTNER_CHANNELS).values_list(
            "partner_id", "fields_"):
        received.setdefault(str(partner_id), set()).update(fields or [])
    latest: dict[str, tuple[Disclosure, list[str]]] = {}
    for partner_id in sorted(received):
        row = await Disclosure.filter(member_id=member_id, partner_id=partner_id,
                                      channel__in=ledger.PARTNER_CHANNELS).order_by("-at").first()
        if row is not None:
            latest[partner_id] = (row, sorted(received[partner_id]))
    return latest


def _confirmation(retained_until: datetime | None, partners: list[str]) -> str:
    lines = ["Your membership has been withdrawn and your personal data destroyed."]
    if retained_until is not None:
        lines.append("Because you made purchases, the law requires us to keep your purchase "
                     "records and the name and address they were made out to, in a separate "
                     f"store, until {retained_until.date().isoformat()}; they are destroyed then.")
    if partners:
        lines.append(f"{len(partners)} partner(s) that received your data were told to erase it.")
    lines.append("This cannot be undone.")
    return "\n\n".join(lines)


async def history_purge(rt: Runtime, batch: int = 50) -> dict[str, int]:
    """Delete the leftover history of destroyed members and forget their ids in deletion duties
    (idempotent; leased like every job)."""
    purged = {"members": 0, "consentEvents": 0, "disclosures": 0}
    for member_id in await HistoryPurge.all().order_by("queued_at").limit(batch).values_list(
            "member_id", flat=True):
        async with in_transaction("default") as conn:
            purged["consentEvents"] += await ConsentEvent.filter(
                member_id=member_id).using_db(conn).delete()
            purged["disclosures"] += await Disclosure.filter(
                member_id=member_id).using_db(conn).delete()
            # The partner still owes the deletion: the duty stays, without the member's id.
            await DeletionDuty.filter(member_id=member_id).using_db(conn).update(member_id=None)
            await HistoryPurge.filter(member_id=member_id).using_db(conn).delete()
        purged["members"] += 1
    return purged
