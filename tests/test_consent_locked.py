"""A consent write that cannot get SQLite's write lock (another process holds it past the busy
timeout) answers UNAVAILABLE, as the contract (v2) asks of a dependency that is not there:
retry later. Nothing is recorded, and the same write succeeds once the lock is free."""

from __future__ import annotations

import sqlite3

import pytest
from tortoise import connections

from api.models.audit import AuditEntry
from api.models.consent import ConsentEvent
from api.platform.sqlite_immediate import ImmediateSqliteClient
from tests.conftest import error_code

GIVE = 'mutation { giveConsent(purpose: "marketing", policyVersion: "1.0") { state receipt } }'


@pytest.mark.both_graphql_paths
async def test_a_consent_write_behind_another_writer_answers_unavailable(rt, gql, member):
    db = connections.get("default")
    if not isinstance(db, ImmediateSqliteClient):
        pytest.skip("PostgreSQL locks rows, not the database")
    entries = await AuditEntry.all().count()
    path = rt.settings.main_url.removeprefix("sqlite://").split("?", 1)[0]
    await db.execute_script("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        body = await gql(GIVE, token=member.token)
        other.execute("ROLLBACK")
        assert error_code(body) == "UNAVAILABLE", body
        assert body["errors"][0]["message"] == (
            "a service this request needs is unavailable; retry later")
        assert await ConsentEvent.filter(member_id=member.id).count() == 0
        assert await AuditEntry.all().count() == entries
        body = await gql(GIVE, token=member.token)
        assert body["data"]["giveConsent"]["state"] == "GIVEN", body
    finally:
        other.close()
        await db.execute_script("PRAGMA busy_timeout = 5000")
