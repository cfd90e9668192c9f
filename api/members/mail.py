"""Notification delivery over SMTP (aiosmtplib): the read side of ``api.members.notifications``.

Each PENDING notification whose ``next_attempt_at`` has come is claimed by a conditional UPDATE
that pushes ``next_attempt_at`` a lease ahead, so several workers never send the same row at
once; a crash mid-send retries after the lease (at least once). Failures back off
exponentially (1, 2, 4... minutes, capped at 6 hours) and after ``mail_max_attempts`` the row is
DEAD. The recipient address is decrypted only now: from the member's record, or from
``recipient_ct`` (sealed under the KEK) for a member already destroyed; ``recipient_ct`` is
dropped as soon as the mail is sent or given up. A run sends over up to ``CONCURRENCY``
SMTP connections at once, each reused for a lane of mails (``_Relay``). Mail to a dormant
member (address in the vault) is held, re-checked daily without counting attempts, and sent
once they sign in again.
Errors are logged by class only.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from api.core.errors import NotFound
from api.members import account_mail
from api.members import records as members
from api.members.notifications import recipient_label
from api.models.enums import MemberStatus
from api.models.member import Member
from api.models.rights import Notification
from api.platform.runtime import Runtime
from api.security.sealed import open_sealed

__all__ = ["send_pending", "send_mail", "backoff", "LEASE_SECONDS", "BATCH", "CONCURRENCY"]

log = logging.getLogger("consentry.mailer")

LEASE_SECONDS = 300
BATCH = 2000  # mails per job run (the worker runs the jobs every second)
CONCURRENCY = 8  # SMTP connections at once per worker
PENDING, SENT, DEAD = "PENDING", "SENT", "DEAD"


class NoRecipient(Exception):
    """Nobody to send to: the member was destroyed before the mail went out."""


class Held(Exception):
    """The member is dormant (address in the vault): hold the mail until they come back."""


HOLD = timedelta(days=1)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 6 * 3600))


async def _recipient(rt: Runtime, row: Notification) -> str:
    if row.recipient_ct:
        return open_sealed(rt.keys, recipient_label(str(row.id)), bytes(row.recipient_ct)).decode()
    if row.member_id is None:
        raise NoRecipient("no recipient")
    try:
        return (await members.get_view(rt, str(row.member_id))).email
    except NotFound:
        if await Member.exists(id=row.member_id, status=MemberStatus.DORMANT):
            raise Held("member is dormant") from None
        raise NoRecipient("member unavailable") from None


def _message(rt: Runtime, row: Notification, to: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = rt.settings.mail_from
    msg["To"] = to
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(rt.now())
    msg["Message-ID"] = make_msgid(idstring=str(row.id), domain="consentry.invalid")
    msg["X-Consentry-Kind"] = row.kind
    msg.set_content(body)
    return msg


class _Relay:
    """One SMTP connection, opened on first use and reused for the mails that follow (a
    connection per mail capped throughput at a few dozen a second). After any failure it is
    dropped, so the next mail starts on a fresh connection."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.smtp: aiosmtplib.SMTP | None = None

    async def send(self, msg: EmailMessage) -> None:
        if self.smtp is None:
            self.smtp = await _connect(self.rt)
        try:
            await self.smtp.send_message(msg)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


async def _connect(rt: Runtime) -> aiosmtplib.SMTP:
    s = rt.settings
    if s.smtp_tls not in ("none", "starttls", "tls"):
        raise ValueError("smtp_tls must be none, starttls or tls")
    # Certificates are always verified; a private relay's CA can be added with smtp_ca_file.
    context = (ssl.create_default_context(cafile=s.smtp_ca_file or None)
               if s.smtp_tls != "none" else None)
    smtp = aiosmtplib.SMTP(
        hostname=s.smtp_host, port=s.smtp_port,
        username=s.smtp_user or None, password=s.smtp_password or None,
        use_tls=s.smtp_tls == "tls", start_tls=s.smtp_tls == "starttls",
        tls_context=context, timeout=s.mail_timeout_seconds)
    await smtp.connect()
    return smtp


async def _send_one(rt: Runtime, row: Notification, relay: _Relay) -> str:
    try:
        to = await _recipient(rt, row)
        body = await account_mail.body_for(rt, row)  # a token's link; who sends it and why
        await relay.send(_message(rt, row, to, body))
    except Held:
        await Notification.filter(id=row.id).update(next_attempt_at=rt.now() + HOLD,
                                                    last_error="Held")
        return "held"
    except Exception as exc:  # any failure is retried; only its class is kept
        attempts = row.attempts + 1
        dead = attempts >= rt.settings.mail_max_attempts or isinstance(exc, NoRecipient)
        await Notification.filter(id=row.id).update(
            attempts=attempts, last_error=type(exc).__name__[:255],
            status=DEAD if dead else PENDING,
            next_attempt_at=rt.now() + backoff(attempts),
            **({"recipient_ct": None} if dead else {}))
        log.warning("notification %s not sent (%s), attempt %d", row.id, type(exc).__name__,
                    attempts)
        if dead:
            await account_mail.forget(row)
        return DEAD if dead else "retry"
    await Notification.filter(id=row.id).update(status=SENT, sent_at=rt.now(),
                                                attempts=row.attempts + 1, recipient_ct=None,
                                                last_error=None)
    await account_mail.forget(row)
    return SENT


async def send_pending(rt: Runtime, limit: int = BATCH,
                       concurrency: int = CONCURRENCY) -> dict[str, int]:
    """Send what is due now, up to ``limit`` mails over at most ``concurrency`` connections
    (one per lane, reused for the lane's mails); returns counts by outcome."""
    now = rt.now()
    ids = await (Notification.filter(status=PENDING, next_attempt_at__lte=now)
                 .order_by("next_attempt_at").limit(limit).values_list("id", flat=True))
    counts = {SENT: 0, "retry": 0, DEAD: 0, "held": 0}
    due = iter(ids)  # shared by the lanes: each row is taken by one lane

    async def lane() -> None:
        relay = _Relay(rt)
        try:
            for note_id in due:
                claimed = await Notification.filter(id=note_id, status=PENDING,
                                                    next_attempt_at__lte=now).update(
                    next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
                if not claimed:
                    continue  # another worker has it
                row = await Notification.get(id=note_id)
                counts[await _send_one(rt, row, relay)] += 1
        finally:
            await relay.close()

    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, len(ids))))))
    return counts


async def send_mail(rt: Runtime) -> dict[str, int]:
    return await send_pending(rt)
