"""Account steps other tests need: confirming an email change through the mailed link (sent to
the real test SMTP server, read from there)."""

from __future__ import annotations

import re
from typing import Any

from api.members.mail import send_pending

VERIFY = "mutation($t: String!) { verifyEmail(token: $t) }"


def mail_text(mail: Any) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def confirm_email(gql: Any, rt: Any, smtp: Any, address: str) -> None:
    """Send what is queued, open the latest verification link mailed to ``address``."""
    await send_pending(rt)
    mails = [m for m in smtp.to(address) if m["X-Consentry-Kind"] == "account.verify_email"]
    assert mails, f"no verification mail to {address}"
    found = re.search(r"[?&]token=([A-Za-z0-9_\-]+)", mail_text(mails[-1]))
    assert found
    body = await gql(VERIFY, {"t": found.group(1)})
    assert body.get("data") == {"verifyEmail": True}, body
