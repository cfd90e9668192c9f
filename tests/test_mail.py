"""Notifications delivered over SMTP to a real server (aiosmtpd on 127.0.0.1): at least once,
never twice from two workers, retried with backoff, dead after the configured attempts."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from api.members.dormancy import dormancy
from api.members.mail import backoff, send_pending
from api.members.notifications import notify
from api.models.rights import Notification
from api.platform.jobs import run_all
from api.service.composition import JOBS
from tests import helpers_rights
from tests.conftest import LOGIN, PASSWORD
from tests.helpers_rights import _Collect, _free_port

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures


async def _note(rt, member_id: str, kind: str = "policy.announced") -> str:
    return await notify(rt, None, member_id=member_id, kind=kind, subject="A new policy",
                        body="A new policy version takes effect in 30 days.")


async def test_notifications_arrive_at_the_smtp_server_once(mail_rt, smtp, member, other_member):
    a = await _note(mail_rt, member.id)
    await _note(mail_rt, other_member.id)
    assert (await send_pending(mail_rt))["SENT"] == 4  # and the verification mail each registration sends
    assert (await send_pending(mail_rt))["SENT"] == 0
    [mail] = [m for m in smtp.to("alice@example.org") if m["X-Consentry-Kind"] == "policy.announced"]
    assert mail["Subject"] == "A new policy"
    assert mail["From"] == mail_rt.settings.mail_from
    assert "30 days" in mail.get_payload()
    assert len(smtp.to("bob@example.org")) == 2
    row = await Notification.get(id=a)
    assert row.status == "SENT" and row.sent_at == mail_rt.now() and row.attempts == 1


async def test_two_workers_send_each_mail_once(mail_rt, smtp, member):
    for _ in range(5):
        await _note(mail_rt, member.id)
    results = await asyncio.gather(send_pending(mail_rt), send_pending(mail_rt),
                                   run_all(mail_rt, JOBS, only=["send_mail"]))
    # and the verification mail each registration sends
    assert results[0]["SENT"] + results[1]["SENT"] + results[2]["send_mail"]["SENT"] == 6
    assert len(smtp.to("alice@example.org")) == 6


async def test_failure_backs_off_then_delivers(rt, clock, member):
    rt.settings = dataclasses.replace(rt.settings, smtp_host="127.0.0.1", smtp_port=_free_port(),
                                      mail_timeout_seconds=5)
    note = await _note(rt, member.id)
    assert (await send_pending(rt))["retry"] == 2  # and the verification mail each registration sends
    row = await Notification.get(id=note)
    assert row.status == "PENDING" and row.attempts == 1
    assert row.next_attempt_at == clock.now() + backoff(1) and row.last_error
    assert (await send_pending(rt))["retry"] == 0  # not due yet
    handler = _Collect()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        rt.settings = dataclasses.replace(rt.settings, smtp_port=port)
        clock.advance(seconds=backoff(1).total_seconds())
        assert (await send_pending(rt))["SENT"] == 2
    finally:
        controller.stop()
    assert [m["To"] for m in handler.messages] == ["alice@example.org"] * 2
    assert backoff(2) == 2 * backoff(1) and backoff(30) == timedelta(hours=6)


async def test_gives_up_after_max_attempts(rt, clock, member):
    rt.settings = dataclasses.replace(rt.settings, smtp_host="127.0.0.1", smtp_port=_free_port(),
                                      mail_max_attempts=2)
    note = await _note(rt, member.id)
    await send_pending(rt)
    clock.advance(hours=1)
    assert (await send_pending(rt))["DEAD"] == 2  # and the verification mail each registration sends
    row = await Notification.get(id=note)
    assert row.status == "DEAD" and row.attempts == 2 and row.recipient_ct is None


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtp_login_with_configured_credentials(rt, member):
    seen: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret-pass")

    handler = _Collect()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        rt.settings = dataclasses.replace(rt.settings, smtp_host="127.0.0.1", smtp_port=port,
                                          smtp_user="consentry", smtp_password="s3cret-pass")
        await _note(rt, member.id)
        assert (await send_pending(rt))["SENT"] == 2  # and the verification mail each registration sends
    finally:
        controller.stop()
    assert seen == [("consentry", "s3cret-pass")] * 2  # one connection per lane
    assert len(handler.messages) == 2


async def test_dormancy_notice_is_mailed(mail_rt, smtp, clock, member):
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))  # 11 months after alice registered
    await dormancy(mail_rt)
    await run_all(mail_rt, JOBS, only=["send_mail"])
    [mail] = [m for m in smtp.to("alice@example.org") if m["X-Consentry-Kind"] == "dormancy.notice"]
    assert mail["Subject"] == "Your account will become dormant"
    assert mail["Date"] == "Tue, 01 Dec 2026 00:00:00 +0000"
    assert mail["X-Consentry-Kind"] == "dormancy.notice"


async def test_mail_to_a_dormant_member_is_held_until_they_return(gql, mail_rt, smtp, clock,
                                                                  member):
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))  # notice: 11 months after registering
    await dormancy(mail_rt)
    await send_pending(mail_rt)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))  # dormant: 12 months
    await dormancy(mail_rt)
    note = await _note(mail_rt, member.id)
    assert (await send_pending(mail_rt))["held"] == 1
    row = await Notification.get(id=note)
    assert row.status == "PENDING" and row.attempts == 0
    assert "errors" not in await gql(LOGIN, {"u": "alice", "p": PASSWORD})  # reactivates
    clock.advance(days=1)
    assert (await send_pending(mail_rt))["SENT"] == 1
    subjects = [m["Subject"] for m in smtp.to("alice@example.org")]
    assert subjects[-1] == "A new policy"  # held until now; the others went out at once
    assert sorted(subjects[:-1]) == ["Consentry Clinic: please confirm your email address",
                                     "Your account will become dormant"]


def _self_signed(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files (the test relay's own CA)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "relay.pem", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def test_starttls_is_used_and_the_certificate_verified(rt, member, tmp_path):
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = _Collect()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_ctx,
                            require_starttls=True)
    controller.start()
    try:
        rt.settings = dataclasses.replace(rt.settings, smtp_host="127.0.0.1", smtp_port=port,
                                          smtp_tls="starttls", mail_timeout_seconds=5)
        note = await _note(rt, member.id)
        # Without trusting the relay's certificate nothing is sent.
        assert (await send_pending(rt))["retry"] == 2  # and the verification mail each registration sends
        assert (await Notification.get(id=note)).last_error
        rt.settings = dataclasses.replace(rt.settings, smtp_ca_file=cert)
        await Notification.filter(id=note).update(next_attempt_at=rt.now())
        assert (await send_pending(rt))["SENT"] == 1
    finally:
        controller.stop()
    assert [m["To"] for m in handler.messages] == ["alice@example.org"]
