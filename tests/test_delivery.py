"""Outbox delivery: real jsonl directory, real local webhook receiver checking signatures,
retries with backoff, dead letters and admin retry, crash safety, concurrent workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from api.models.audit import AuditEntry
from api.models.enums import OutboxStatus, PersonalField
from api.models.member import Member, MemberKey
from api.models.partner import DeliveryAttempt, OutboxEvent
from api.service.composition import with_settings
from api.sharing import ledger as disclosures
from api.sharing.bridge import safe_error
from api.sharing.queue import LEASE_SECONDS, backoff, deliver_due
from partners.recording import RecordingAdapter
from tests.conftest import PG_URL, error_code
from tests.helpers_delivery import make_partner, queue
from tests.receivers import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def bucket() -> str:
    return uuid.uuid4().hex


async def statuses() -> dict[str, str]:
    return {str(r.id): r.status.value for r in await OutboxEvent.all()}


async def drain(rt, clock, **kwargs) -> dict[str, int]:
    """Run delivery until nothing is pending, moving the clock to the next due try."""
    total = {"claimed": 0, "delivered": 0, "failed": 0, "dead": 0}
    for _ in range(50):
        stats = await deliver_due(rt, **kwargs)
        for k, v in stats.items():
            total[k] += v
        pending = await OutboxEvent.filter(status=OutboxStatus.PENDING).order_by("-next_attempt_at")
        if not pending:
            return total
        clock.set(max(clock.now(), pending[0].next_attempt_at))
    raise AssertionError("outbox did not drain")


async def test_jsonl_appends_one_json_line_per_event(rt, member, tmp_path: Path) -> None:
    rt = with_settings(rt, jsonl_root=str(tmp_path))  # directories are relative to the root
    partner = await make_partner(rt, "Parcel Co", "jsonl", {"directory": "parcel"})
    ids = [await queue(rt, partner, member.id, {"fullName": "Alice Example",
                                                "address": "1 Clinic Road, Leeds"})
           for _ in range(3)]
    stats = await deliver_due(rt)
    assert stats == {"claimed": 3, "delivered": 3, "failed": 0, "dead": 0}
    lines = (tmp_path / "parcel" / "Parcel_Co.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["id"] for e in events] == ids or sorted(e["id"] for e in events) == sorted(ids)
    for event in events:
        assert set(event) == {"id", "type", "partner", "at", "member", "fields"}
        assert event["type"] == "member.shared" and event["partner"] == "Parcel Co"
        assert set(event["member"]) == {"ref", "fullName", "address"}
        assert event["member"]["ref"].startswith("m_")
    assert set((await statuses()).values()) == {"DELIVERED"}
    attempts = await DeliveryAttempt.all()
    assert len(attempts) == 3 and all(a.ok for a in attempts)
    seen = await disclosures.for_member(member.id)
    assert len(seen) == 3
    assert seen[0].fields == ["ADDRESS", "FULL_NAME"] and seen[0].channel == "push"
    assert seen[0].partner == "Parcel Co" and seen[0].legal_basis.value == "CONTRACT"


async def test_webhook_posts_signed_events_to_a_local_receiver(rt, member) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        partner = await make_partner(rt, "Hook Co", "webhook", {"url": receiver.url, "secret": SECRET})
        ids = {await queue(rt, partner, member.id, {"email": "alice@example.org"}) for _ in range(5)}
        stats = await deliver_due(rt)
    assert stats["delivered"] == 5
    assert receiver.bad_signatures == 0
    assert set(receiver.unique) == ids
    event = next(iter(receiver.unique.values()))
    assert set(event["member"]) == {"ref", "email"} and event["partner"] == "Hook Co"


async def test_webhook_with_a_wrong_secret_fails_and_is_retried_later(rt, clock, member) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        partner = await make_partner(rt, "Wrong Co", "webhook", {"url": receiver.url,
                                                                 "secret": "not the secret"})
        event_id = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
        stats = await deliver_due(rt)
    assert stats["failed"] == 1 and receiver.bad_signatures == 1
    row = await OutboxEvent.get(id=event_id)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at > clock.now() and row.locked_until is None
    assert row.last_error == "receiver answered an error status"
    attempt = await DeliveryAttempt.get(event_id=event_id)
    assert not attempt.ok and "Alice" not in (attempt.error or "")
    assert await deliver_due(rt) == {"claimed": 0, "delivered": 0, "failed": 0, "dead": 0}


async def test_unreachable_receiver_is_a_failure(rt, member) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        url = receiver.url
    partner = await make_partner(rt, "Gone Co", "webhook", {"url": url, "secret": SECRET})
    event_id = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    assert (await deliver_due(rt))["failed"] == 1
    row = await OutboxEvent.get(id=event_id)
    assert row.last_error == "receiver refused"


async def test_receiver_failing_then_recovering_gets_every_event_exactly_once(rt, clock, member) -> None:
    async with WebhookReceiver(SECRET, fail_first=25) as receiver:
        partner = await make_partner(rt, "Flaky Co", "webhook", {"url": receiver.url, "secret": SECRET})
        ids = {await queue(rt, partner, member.id, {"fullName": "Alice Example"}) for _ in range(20)}
        total = await drain(rt, clock)
    assert receiver.failed == 25 and total["failed"] >= 1 and total["dead"] == 0
    assert set(receiver.unique) == ids  # every event, deduplicated by webhook-id
    assert len(receiver.unique) == len(ids)
    assert set((await statuses()).values()) == {"DELIVERED"}
    assert await DeliveryAttempt.filter(ok=False).count() == 25
    assert len(await disclosures.for_member(member.id)) == 20  # one per delivered event


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    import random

    rng = random.Random(7)
    for attempts in range(1, 20):
        ceiling = min(3600.0, 2.0 * 2 ** (attempts - 1))
        samples = [backoff(attempts, rng) for _ in range(200)]
        assert all(1.0 <= s <= max(1.0, ceiling) for s in samples)
    assert max(backoff(30, rng) for _ in range(500)) > 1800  # reaches toward the 1 h cap


DEAD = "query { deadLetters { id partnerId partnerName type attempts lastError lastAttemptAt } }"
RETRY = "mutation($ids: [ID!]!) { retryDeadLetters(ids: $ids) }"
COUNTS = "query { outboxCounts { pending delivered dead } }"


async def test_dead_letter_after_bounded_tries_then_admin_retry_delivers(rt, clock, gql, admin,
                                                                          member) -> None:
    name = bucket()
    partner = await make_partner(rt, "Recorder", "recording", {"bucket": name, "fail": 4})
    event_id = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    total = await drain(rt, clock, max_attempts=3)
    assert total["dead"] == 1 and total["failed"] == 2
    row = await OutboxEvent.get(id=event_id)
    assert row.status == OutboxStatus.DEAD and row.attempts == 3
    assert await AuditEntry.filter(action="outbox.dead", subject=event_id).exists()

    body = await gql(DEAD, token=admin.token)
    assert body["data"]["deadLetters"] == [{
        "id": event_id, "partnerId": str(partner.id), "partnerName": "Recorder",
        "type": "member.shared", "attempts": 3, "lastError": "recording adapter told to fail",
        "lastAttemptAt": body["data"]["deadLetters"][0]["lastAttemptAt"]}]
    assert (await gql(COUNTS, token=admin.token))["data"]["outboxCounts"] == {
        "pending": 0, "delivered": 0, "dead": 1}
    assert error_code(await gql(DEAD, token=member.token)) == "FORBIDDEN"
    assert error_code(await gql(RETRY, {"ids": [event_id]}, token=member.token)) == "FORBIDDEN"
    assert error_code(await gql(RETRY, {"ids": ["not-an-id"]}, token=admin.token)) == "BAD_USER_INPUT"

    body = await gql(RETRY, {"ids": [event_id]}, token=admin.token)
    assert body["data"]["retryDeadLetters"] == 1
    assert await AuditEntry.filter(action="outbox.retry", subject=event_id).exists()
    # One more failure is left in the recorder: the fresh budget absorbs it.
    await drain(rt, clock, max_attempts=3)
    assert (await OutboxEvent.get(id=event_id)).status == OutboxStatus.DELIVERED
    assert [e.id for e in RecordingAdapter.events(name)] == [event_id]
    assert (await gql(DEAD, token=admin.token))["data"]["deadLetters"] == []


async def test_adapter_sees_only_granted_fields(rt, member) -> None:
    """Granted FULL_NAME only; the queued event also carries an address and an email."""
    name = bucket()
    partner = await make_partner(rt, "Minimal Co", "recording", {"bucket": name},
                                 fields=[PersonalField.FULL_NAME])
    await queue(rt, partner, member.id, {"fullName": "Alice Example", "address": "1 Road",
                                         "email": "alice@example.org"})
    await deliver_due(rt)
    (event,) = RecordingAdapter.events(name)
    assert event.member.fields == ("ref", "fullName")
    assert event.member.fullName == "Alice Example"
    assert event.member.ref.startswith("m_")
    for other in ("email", "address", "phone", "dateOfBirth", "userId", "id", "__dict__"):
        with pytest.raises(AttributeError):
            getattr(event.member, other)
    with pytest.raises(AttributeError):
        event.member.email = "x@example.org"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.member.fullName = "Mallory"  # type: ignore[misc]
    assert "Alice" not in repr(event) and "Alice" not in repr(event.member)
    assert json.loads(event.to_json())["member"] == {"ref": event.member.ref, "fullName": "Alice Example"}


async def test_destroyed_member_payload_is_dead_but_erasure_notice_is_delivered(rt, member) -> None:
    name = bucket()
    partner = await make_partner(rt, "Erase Co", "recording", {"bucket": name})
    shared = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    erasure = await queue(rt, partner, member.id, None, type="member.erasure")
    await MemberKey.filter(member_id=member.id).delete()  # crypto-shredded
    stats = await deliver_due(rt)
    assert stats["dead"] == 1 and stats["delivered"] == 1
    row = await OutboxEvent.get(id=shared)
    assert row.status == OutboxStatus.DEAD and row.last_error == "member destroyed"
    (event,) = RecordingAdapter.events(name)
    assert event.id == erasure and event.type == "member.erasure"
    assert event.member.fields == ("ref",)
    assert await disclosures.for_member(member.id) == []  # an erasure notice discloses nothing


async def test_unknown_adapter_is_retried_then_dead(rt, clock, member) -> None:
    partner = await make_partner(rt, "Nope Co", "no-such-adapter", {})
    event_id = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    await drain(rt, clock, max_attempts=2)
    row = await OutboxEvent.get(id=event_id)
    assert row.status == OutboxStatus.DEAD
    assert row.last_error == "no partner adapter named 'no-such-adapter' is installed"


async def test_retired_partner_gets_erasure_notices_only(rt, member) -> None:
    name = bucket()
    partner = await make_partner(rt, "Old Co", "recording", {"bucket": name})
    shared = await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    erasure = await queue(rt, partner, member.id, None, type="member.erasure")
    partner.retired_at = rt.now()
    await partner.save()
    await deliver_due(rt)
    assert (await OutboxEvent.get(id=shared)).status == OutboxStatus.DEAD
    assert [e.id for e in RecordingAdapter.events(name)] == [erasure]


async def test_delivery_sends_only_fields_granted_now(rt, member) -> None:
    name = bucket()
    partner = await make_partner(rt, "Narrow Co", "recording", {"bucket": name},
                                 fields=[PersonalField.FULL_NAME])
    both = await queue(rt, partner, member.id, {"fullName": "Alice Example", "address": "1 Road"})
    only_address = await queue(rt, partner, member.id, {"address": "1 Road"})
    stats = await deliver_due(rt)
    assert stats["delivered"] == 1 and stats["dead"] == 1
    (event,) = RecordingAdapter.events(name)
    assert event.id == both and event.member.fields == ("ref", "fullName")
    assert (await OutboxEvent.get(id=only_address)).last_error == "no field of this event is granted any more"
    (seen,) = await disclosures.for_member(member.id)
    assert seen.fields == ["FULL_NAME"]


async def test_delivery_rechecks_every_member_of_a_batch(rt, member, other_member) -> None:
    name = bucket()
    partner = await make_partner(rt, "Batch Grant Co", "recording", {"bucket": name},
                                 fields=[PersonalField.ADDRESS])
    kept = [await queue(rt, partner, member.id, {"fullName": "Alice Example", "address": "1 Road"})
            for _ in range(2)]
    gone = await queue(rt, partner, other_member.id, {"address": "2 Road"})
    await Member.filter(id=other_member.id).update(has_purchase=False)  # no contract any more
    stats = await deliver_due(rt, batch=10)
    assert stats == {"claimed": 3, "delivered": 2, "failed": 0, "dead": 1}
    events = RecordingAdapter.events(name)
    assert sorted(e.id for e in events) == sorted(kept)
    assert all(e.member.fields == ("ref", "address") for e in events)
    assert (await OutboxEvent.get(id=gone)).last_error == "no basis to share this member any more"


async def test_limit_and_batch_bound_one_run(rt, member) -> None:
    name = bucket()
    partner = await make_partner(rt, "Batch Co", "recording", {"bucket": name})
    for _ in range(7):
        await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    assert (await deliver_due(rt, batch=2, limit=5))["delivered"] == 5
    assert (await deliver_due(rt, batch=2))["delivered"] == 2
    assert len({e.id for e in RecordingAdapter.events(name)}) == 7


async def test_jobs_run_delivers_the_outbox(rt, member, tmp_path: Path) -> None:
    from api.platform.jobs import run_all
    from api.service.composition import JOBS

    rt = with_settings(rt, jsonl_root=str(tmp_path))
    partner = await make_partner(rt, "Job Co", "jsonl", {"directory": "jobs"})
    await queue(rt, partner, member.id, {"fullName": "Alice Example"})
    results = await run_all(rt, JOBS, only=["deliver_outbox"])
    assert results["deliver_outbox"]["delivered"] == 1
    assert len((tmp_path / "jobs" / "Job_Co.jsonl").read_text().splitlines()) == 1


def _worker_env(rt) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CONSENTRY_DATABASE_URL": rt.settings.main_url,
        "CONSENTRY_VAULT_DATABASE_URL": rt.settings.vault_url,
        "CONSENTRY_DATA_DIR": str(rt.settings.data_dir),
        "CONSENTRY_NOW": rt.now().isoformat(),
    })
    return env


async def test_worker_killed_mid_batch_loses_nothing(rt, clock, member) -> None:
    async with WebhookReceiver(SECRET, hold_after=5) as receiver:
        partner = await make_partner(rt, "Crash Co", "webhook", {"url": receiver.url, "secret": SECRET})
        ids = {await queue(rt, partner, member.id, {"fullName": "Alice Example"}) for _ in range(30)}
        worker = subprocess.Popen(  # noqa: ASYNC220 - we never wait on it blocking
            [sys.executable, "-m", "api.service.cli", "worker", "--interval", "0.2"],
            env=_worker_env(rt), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await asyncio.wait_for(receiver.holding.wait(), timeout=60)
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            await asyncio.to_thread(worker.wait)
        assert worker.returncode == -signal.SIGKILL
        receiver.release.set()
        mid = await statuses()
        assert sum(receiver.deliveries.values()) >= 5  # killed mid-batch: some went out,
        assert list(mid.values()).count("DELIVERED") < 30  # but not all were recorded
        # The dead worker's claims stay leased until the lease expires, then anyone delivers them.
        assert (await deliver_due(rt))["claimed"] == 0
        clock.advance(seconds=LEASE_SECONDS + 1)
        await drain(rt, clock)
    assert set(receiver.unique) == ids and len(receiver.unique) == 30
    assert set((await statuses()).values()) == {"DELIVERED"}


@pytest.mark.postgres_only
@pytest.mark.skipif(not PG_URL, reason="SKIP LOCKED concurrency needs PostgreSQL")
async def test_concurrent_runs_on_postgres_never_deliver_the_same_event_twice(rt, member) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        partner = await make_partner(rt, "Busy Co", "webhook", {"url": receiver.url, "secret": SECRET})
        ids = {await queue(rt, partner, member.id, {"fullName": "Alice Example"}) for _ in range(120)}
        results = await asyncio.gather(*(deliver_due(rt, batch=7, concurrency=4) for _ in range(4)))
    assert sum(r["delivered"] for r in results) == 120
    assert sum(1 for r in results if r["delivered"]) >= 2  # the runs really shared the work
    assert set(receiver.deliveries) == ids
    assert max(receiver.deliveries.values()) == 1  # no event was delivered twice


async def test_two_worker_processes_never_deliver_the_same_event_twice(rt, member) -> None:
    """PostgreSQL: SKIP LOCKED; SQLite: one claiming UPDATE statement per batch."""
    async with WebhookReceiver(SECRET) as receiver:
        partner = await make_partner(rt, "Twin Co", "webhook", {"url": receiver.url, "secret": SECRET})
        ids = {await queue(rt, partner, member.id, {"fullName": "Alice Example"}) for _ in range(200)}
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.service.cli", "jobs", "run", "--only", "deliver_outbox",
            env=_worker_env(rt), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            for _ in range(2)]
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), timeout=120)
    assert codes == [0, 0]
    assert set(receiver.deliveries) == ids
    assert max(receiver.deliveries.values()) == 1


def test_attempt_log_keeps_only_messages_known_to_be_safe() -> None:
    from partners.base import DeliveryError

    assert safe_error(ValueError("Alice Example, 1 Clinic Road")) == "adapter raised ValueError"
    assert safe_error(DeliveryError("receiver answered HTTP 500")) == "receiver answered HTTP 500"
    assert len(safe_error(DeliveryError("x" * 1000))) == 255
