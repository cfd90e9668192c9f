"""Seeding through the real services (registration, sessions, admin creation)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from api.members import auth, sessions
from api.members import records as members
from api.models.enums import MemberStatus
from api.platform.runtime import Runtime
from api.security.blind_index import blind_index
from api.security.envelope import new_data_key
from api.security.passwords import hash_password

__all__ = ["Seeded", "seed_basic", "seed_writers"]

PASSWORD = "correct horse battery staple 42"


@dataclass
class Seeded:
    member_id: str = ""
    member_token: str = ""
    admin_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def member_rows(rt: Runtime, start: int, n: int, password_hash: str,
                prefix: str = "m") -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Rows exactly as ``members.register`` writes them (real data keys, real AES-GCM field
    ciphertexts, real blind indexes), minus one argon2 hash per member: every seeded member
    shares ``password_hash``, which is what makes a million rows take minutes, not days."""
    now = rt.now()
    for i in range(start, start + n):
        member_id = uuid.uuid4()
        key, wrapped, version = new_data_key(rt.keys, str(member_id))
        user_id, email = f"{prefix}{i:07d}", f"{prefix}{i:07d}@example.org"
        yield ({"member_id": member_id, "wrapped": wrapped, "kek_version": version}, {
            "id": member_id, "status": MemberStatus.ACTIVE.value, "created_at": now,
            "last_active_at": now, "password_hash": password_hash,
            "user_id_idx": blind_index(rt.keys, "user_id", user_id),
            "email_idx": blind_index(rt.keys, "email", email),
            "user_id_ct": key.encrypt("user_id", user_id),
            "email_ct": key.encrypt("email", email),
            "full_name_ct": key.encrypt("full_name", f"Member {i} Example"),
            "date_of_birth_ct": key.encrypt("date_of_birth", "1980-01-01"),
            "phone_ct": key.encrypt("phone", "+44 20 7946 0000"),
            "address_ct": key.encrypt("address", f"{i} Clinic Road, Leeds"),
            "has_purchase": False, "user_id_folded": True,  # the ids are lower case already
        })


async def bulk_members(rt: Runtime, n: int, prefix: str = "m",
                       has_purchase: bool = False) -> list[str]:
    """``n`` members through the ORM in batches (SQLite or PostgreSQL)."""
    from api.models.member import Member, MemberKey

    shared_hash = await hash_password(PASSWORD)
    ids: list[str] = []
    batch_keys: list[MemberKey] = []
    batch: list[Member] = []
    for key_row, row in member_rows(rt, 0, n, shared_hash, prefix):
        row["has_purchase"] = has_purchase
        batch_keys.append(MemberKey(**key_row))
        batch.append(Member(**row))
        ids.append(str(row["id"]))
        if len(batch) >= 1000:
            await MemberKey.bulk_create(batch_keys)
            await Member.bulk_create(batch)
            batch_keys, batch = [], []
    if batch:
        await MemberKey.bulk_create(batch_keys)
        await Member.bulk_create(batch)
    return ids


async def copy_members(rt: Runtime, dsn: str, n: int, prefix: str = "s",
                       chunk: int = 20_000, has_purchase: bool = True) -> float:
    """``n`` members into PostgreSQL with COPY (asyncpg); returns seconds taken."""
    import asyncpg

    shared_hash = await hash_password(PASSWORD)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn.replace("postgres://", "postgresql://", 1))
    try:
        done = 0
        while done < n:
            size = min(chunk, n - done)
            keys, rows = [], []
            for key_row, row in member_rows(rt, done, size, shared_hash, prefix):
                row["has_purchase"] = has_purchase
                keys.append((key_row["member_id"], key_row["wrapped"], key_row["kek_version"]))
                rows.append(tuple(row[c] for c in _MEMBER_COLUMNS))
            await conn.copy_records_to_table("member_keys", records=keys,
                                             columns=["member_id", "wrapped", "kek_version"])
            await conn.copy_records_to_table("members", records=rows, columns=_MEMBER_COLUMNS)
            done += size
            if done % 100_000 < chunk:
                print(f"  seeded {done:,} members ({time.perf_counter() - started:.0f} s)",
                      flush=True)
        await conn.execute("ANALYZE members; ANALYZE member_keys;")
    finally:
        await conn.close()
    return time.perf_counter() - started


# A store that has run for a while, in SQL (PostgreSQL): what makes a job that reads every row
# each run show up at a million members. {p} is the partner that received the shared members.
_HISTORY = [
    # every member gave two purposes; a fifth withdrew one
    "INSERT INTO consent_events (id, member_id, purpose, state, policy_version, at, receipt) "
    "SELECT gen_random_uuid(), id, p, 'GIVEN', '1', now() - interval '30 days', 'seeded' "
    "FROM members, (VALUES ('marketing'), ('personalization')) AS v(p)",
    "INSERT INTO consent_events (id, member_id, purpose, state, policy_version, at, receipt) "
    "SELECT gen_random_uuid(), id, 'marketing', 'WITHDRAWN', '1', now() - interval '10 days', "
    "'seeded' FROM members WHERE hashtext(id::text) % 5 = 0",
    # a share of them gave the partner's purpose and were delivered to it (event + ledger)
    "INSERT INTO consent_events (id, member_id, purpose, state, policy_version, at, receipt) "
    "SELECT gen_random_uuid(), id, '{purpose}', 'GIVEN', '1', now() - interval '6 days', "
    "'seeded' FROM members WHERE abs(hashtext(id::text)) % 100 < {share}",
    "INSERT INTO outbox_events (id, partner_id, member_id, type, status, attempts, "
    "next_attempt_at, created_at, delivered_at, payload_plain) SELECT gen_random_uuid(), '{p}', "
    "member_id, 'member.shared', 'DELIVERED', 1, at, at, at, '{{}}' FROM consent_events "
    "WHERE purpose = '{purpose}'",
    "INSERT INTO disclosures (id, member_id, partner_id, partner_name, fields, purpose, "
    "legal_basis, channel, at) SELECT gen_random_uuid(), member_id, partner_id, 'seeded', "
    "'[\"FULL_NAME\"]', '{purpose}', 'CONSENT', 'push', delivered_at FROM outbox_events "
    "WHERE partner_id = '{p}'",
    # a tenth of those were later told to delete (unconfirmed duties: a webhook cannot confirm)
    "INSERT INTO deletion_duties (event_id, partner_id, member_id, kind, fields, created_at, "
    "due_at) SELECT gen_random_uuid(), partner_id, member_id, 'member.revoked', "
    "'[\"FULL_NAME\"]', now() - interval '3 days', now() + interval '27 days' "
    "FROM outbox_events WHERE partner_id = '{p}' AND abs(hashtext(id::text)) % 10 = 0",
    # three audit entries per member, chained after the chain so far (placeholder hashes),
    # one mail each, and old erasure requests
    "INSERT INTO audit_entries (seq, pos, at, actor, action, subject, detail, prev_hash, hash) "
    "SELECT nextval('audit_entries_seq_seq'), (SELECT coalesce(max(pos), 0) FROM audit_entries) "
    "+ n, now() - interval '30 days', 'member:seeded', "
    "'consent.give', 'seeded', '{{}}', repeat('0', 64), repeat('0', 64) "
    "FROM generate_series(1, (SELECT 3 * count(*) FROM members)) AS n",
    "INSERT INTO notifications (id, member_id, kind, subject, body, status, attempts, "
    "next_attempt_at, created_at, sent_at) SELECT gen_random_uuid(), id, 'policy.announced', "
    "'New policy', 'seeded', 'SENT', 1, now() - interval '20 days', now() - interval '20 days', "
    "now() - interval '20 days' FROM members",
    "INSERT INTO data_requests (id, kind, status, fields, received_at, due_at, resolved_at) "
    "SELECT gen_random_uuid(), 'ERASURE', 'COMPLETED', '[]', now() - interval '20 days', "
    "now() - interval '20 days', now() - interval '20 days' "
    "FROM generate_series(1, (SELECT count(*) / 20 FROM members))",
    # one in twenty inactive for 11.5 months, told 10 days ago: waiting out the notice
    "UPDATE members SET last_active_at = now() - interval '350 days', "
    "dormancy_notified_at = now() - interval '10 days' WHERE abs(hashtext(id::text)) % 20 = 0",
    "ANALYZE",
]


async def seed_history(dsn: str, partner_id: str, purpose: str, share: int = 30) -> float:
    """History for the members already seeded (PostgreSQL, plain SQL, seconds taken): consents,
    ``share`` per cent of them delivered to ``partner_id`` for ``purpose``, deletion duties,
    audit entries, mails, erasure requests and an inactive cohort. Nothing in it is read back
    as data: it is there to be scanned."""
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(dsn.split("?")[0].replace("postgres://", "postgresql://", 1))
    try:
        for sql in _HISTORY:
            await conn.execute(sql.format(p=partner_id, purpose=purpose, share=share))
    finally:
        await conn.close()
    return time.perf_counter() - started


_MEMBER_COLUMNS = ["id", "status", "created_at", "last_active_at", "password_hash",
                   "user_id_idx", "email_idx", "user_id_ct", "email_ct", "full_name_ct",
                   "date_of_birth_ct", "phone_ct", "address_ct", "has_purchase", "user_id_folded"]


async def seed_writers(rt: Runtime, n: int) -> list[tuple[str, str]]:
    """``n`` members registered through the real service, each with an access token: the write
    benchmark gives each connection its own member, so writers do not queue on one row lock."""
    out = []
    for i in range(n):
        view = await members.register(
            rt, user_id=f"writer{i:03d}", email=f"writer{i:03d}@example.org",
            full_name=f"Writer {i} Example", password=PASSWORD, phone="+44 20 7946 0000",
            address=f"{i} Writer Road, Leeds")
        out.append((view.id, (await sessions.start(rt, "MEMBER", view.id)).access_token))
    return out


async def seed_basic(rt: Runtime, list_size: int, writers: int = 32) -> Seeded:
    """One fully populated member (the ``me`` row), an admin, ``list_size`` more members, and
    ``writers`` members with tokens for the write benchmark (``extra["writers"]``)."""
    from datetime import date

    view = await members.register(
        rt, user_id="alice", email="alice@example.org", full_name="Alice Example",
        password=PASSWORD, phone="+44 20 7946 0000", address="1 Clinic Road, Leeds",
        date_of_birth=date(1990, 4, 1))
    out = Seeded(member_id=view.id)
    from api.consent import consents as consent
    from api.consent import policy, purposes

    await purposes.ensure_builtin_purposes(rt)
    await policy.ensure_initial_policy(rt)
    version = (await policy.in_force(rt)).version
    for purpose in ("marketing", "personalization", "research"):
        await consent.give(rt, view.id, purpose, version)
    out.member_token = (await sessions.start(rt, "MEMBER", view.id)).access_token
    await auth.create_admin(rt, user_id="bench-admin", email="bench-admin@clinic.example",
                            password=PASSWORD)
    from api.models.member import Admin

    admin = await Admin.get(user_id="bench-admin")
    out.admin_token = (await sessions.start(rt, "ADMIN", str(admin.id))).access_token
    out.extra["members"] = await bulk_members(rt, list_size, has_purchase=True)
    out.extra["writers"] = await seed_writers(rt, writers)
    out.extra.update(await seed_partner(rt))
    return out


async def seed_partner(rt: Runtime) -> dict[str, Any]:
    """A logistics partner (contract basis: purchasing members) announced 31 days ago, so it is
    in force now, with pull credentials. Announced through the real registry."""
    from datetime import timedelta

    from api.core.clock import ManualClock
    from api.sharing import oauth
    from api.sharing import registry as partners_registry

    past = dataclasses.replace(rt, clock=ManualClock(rt.now() - timedelta(days=31)))
    result = await partners_registry.announce(
        past, "bench", name="Bench Logistics", kind="LOGISTICS", purpose="order_fulfillment",
        adapter="jsonl", config={"directory": str(rt.settings.data_dir / "jsonl")},
        fields=["FULL_NAME", "ADDRESS"], optional_fields=["PHONE"])
    cred = await oauth.issue_credentials(rt, "bench", str(result.partner.id), ["members:read"])
    return {"partner_id": str(result.partner.id), "client_id": cred.client_id,
            "client_secret": cred.client_secret}
