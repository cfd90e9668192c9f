"""Account mail: what a member is sent about their account, and the token it carries.

A token must reach the mail job, which runs later, yet only token hashes are stored for
look-up: the notification body holds :data:`LINK` where the link goes, and the token itself
waits in ``mail_secrets`` sealed under the KEK (bound to the notification id) until the mail is
sent or given up (:func:`body_for`, :func:`forget`, called by ``api/members/mail.py``).

Every mail names the clinic and says why it was sent (:func:`footer`); links are
``CONSENTRY_PUBLIC_URL`` + ``/account/<action>?token=<token>``.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from tortoise.backends.base.client import BaseDBAsyncClient

from api.members.notifications import recipient_label
from api.models.accounts import MailSecret
from api.models.rights import Notification
from api.platform.jobs import notify_worker
from api.platform.runtime import Runtime
from api.security.sealed import open_sealed, seal

__all__ = ["VERIFY", "RESET", "EMAIL_IN_USE", "LINK", "queue", "body_for", "forget", "footer",
           "verify_mail", "reset_mail", "in_use_mail"]

VERIFY, RESET, EMAIL_IN_USE = "account.verify_email", "account.password_reset", "account.email_in_use"
LINK = "{link}"
_ACTIONS = {VERIFY: "verify-email", RESET: "reset-password"}

_REASONS = {
    VERIFY: "this address was given for a member account with us",
    RESET: "a new password was asked for the member account that uses this address",
    EMAIL_IN_USE: "this address was given for a member account with us",
}
_DEFAULT_REASON = "you have (or had) a member account with us"


def _secret_label(notification_id: str) -> str:
    return f"mail-secret/{notification_id}"


def link(rt: Runtime, kind: str, token: str) -> str:
    base = rt.settings.public_url.rstrip("/")
    return f"{base}/account/{_ACTIONS[kind]}?{urlencode({'token': token})}"


def footer(rt: Runtime, kind: str) -> str:
    """The lines every mail ends with: who sent it and why."""
    reason = _REASONS.get(kind, _DEFAULT_REASON)
    return (f"\n\n-- \n{rt.settings.controller}\nYou receive this message because {reason}. "
            "It is a service message, not advertising. We never ask for your password by mail.\n")


def verify_mail(rt: Runtime, *, change: bool) -> tuple[str, str]:
    clinic = rt.settings.controller
    what = ("asked to use this address for their member account" if change
            else "created a member account with this address")
    return (f"{clinic}: please confirm your email address",
            f"Hello,\n\nsomeone, we hope you, {what} at {clinic}. To confirm that the "
            f"address is yours, open this link within 7 days:\n\n{LINK}\n\n"
            "If this was not you, ignore this message: the address will not be used.")


def reset_mail(rt: Runtime) -> tuple[str, str]:
    clinic = rt.settings.controller
    return (f"{clinic}: choose a new password",
            f"Hello,\n\na new password was asked for your member account at {clinic}. "
            f"To choose one, open this link within 30 minutes (it works once):\n\n{LINK}\n\n"
            "Choosing a new password signs you out everywhere. If you did not ask for this, "
            "ignore this message: your password stays as it is.")


def in_use_mail(rt: Runtime) -> tuple[str, str]:
    clinic = rt.settings.controller
    return (f"{clinic}: your address was given for another account",
            f"Hello,\n\nsomeone asked to use this address for a member account at {clinic}, "
            "but your own account already uses it, so nothing changed. If this was you, sign "
            "in to your account instead (or ask for a new password). If not, ignore this "
            "message: nobody else was told that this address has an account.")


async def queue(rt: Runtime, conn: BaseDBAsyncClient | None, *, member_id: str | None,
                kind: str, subject: str, body: str, to: str | None = None,
                token: str | None = None) -> str:
    """Queue a mail to the member's address, or to ``to`` (sealed: an address the member row
    does not hold yet), carrying ``token`` in its link."""
    note_id = uuid.uuid4()
    now = rt.now()
    recipient_ct = (seal(rt.keys, recipient_label(str(note_id)), to.encode()) if to is not None
                    else None)
    await Notification.create(id=note_id, member_id=member_id, kind=kind, subject=subject,
                              body=body, recipient_ct=recipient_ct, status="PENDING",
                              attempts=0, next_attempt_at=now, created_at=now, using_db=conn)
    if token is not None:
        await MailSecret.create(notification_id=note_id,
                                secret_ct=seal(rt.keys, _secret_label(str(note_id)),
                                               token.encode()), using_db=conn)
    await notify_worker(rt, conn)  # a person is waiting for this mail: no poll interval
    return str(note_id)


class MissingSecret(Exception):
    """The mail's token is gone (never stored, or dropped): the mail cannot be sent."""


async def body_for(rt: Runtime, row: Notification) -> str:
    """The body to send: the token's link in place of :data:`LINK` for account mail."""
    body = row.body
    if row.kind in _ACTIONS:
        secret = await MailSecret.get_or_none(notification_id=row.id)
        if secret is None:
            raise MissingSecret("no token for this mail")
        token = open_sealed(rt.keys, _secret_label(str(row.id)), bytes(secret.secret_ct)).decode()
        body = body.replace(LINK, link(rt, row.kind, token))
    return body + footer(rt, row.kind)


async def forget(row: Notification) -> None:
    """The mail was sent or given up: its token is not kept."""
    if row.kind in _ACTIONS:
        await MailSecret.filter(notification_id=row.id).delete()
