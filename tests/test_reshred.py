"""Restoring a backup must not resurrect destroyed members (docs/operations.md, "Restore").

End to end, as an operator does it, on real ``consentry serve`` processes and the real CLI:
three members register; the stores are backed up (SQLite: the files copied while the server is
stopped; PostgreSQL: ``pg_dump``/``pg_restore``); one member withdraws; the backup is restored
and the withdrawn member signs in again (resurrected: the backup predates the destruction); then
``consentry restore reshred`` destroys it again from the shred log, which lives outside the
database backups. The other members are untouched and a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.members import vault
from api.models.audit import AuditEntry
from api.models.member import Member
from api.models.rights import DataRequest, Notification
from api.models.vault import RetainedRecord
from api.rights.reshred import reshred
from tests.conftest import PASSWORD
from tests.helpers_serve import CONSENTRY, fresh_store, pg_admin, serve

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken member { id } } }"
LOGIN = ("mutation($u: String!, $p: String!) { login(userId: $u, password: $p) "
         "{ accessToken member { id userId fullName } } }")
WITHDRAW = "mutation($p: String!) { withdrawMembership(password: $p) { destroyed } }"
ME = "{ me { userId email fullName } }"
SQLITE_FILES = ("consentry.sqlite3", "vault.sqlite3")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    """One deployment's environment; its shred log sits apart from the stores, as advised."""
    if PG_URL and (shutil.which("pg_dump") is None or shutil.which("pg_restore") is None):
        pytest.skip("pg_dump/pg_restore are not installed")
    with fresh_store(tmp_path, "reshred",
                     CONSENTRY_SHRED_LOG=str(tmp_path / "elsewhere" / "shred.log"),
                     CONSENTRY_RATE_LIMIT_REGISTER_IP="1000/hour") as env:
        yield env


def _store_urls(env: dict[str, str]) -> list[str]:
    return [env["CONSENTRY_DATABASE_URL"], env["CONSENTRY_VAULT_DATABASE_URL"]]


def _back_up(env: dict[str, str], into: Path) -> None:
    """A backup of both stores, taken while no server runs."""
    into.mkdir()
    if not PG_URL:
        data = Path(env["CONSENTRY_DATA_DIR"])
        for name in SQLITE_FILES:
            assert not (data / f"{name}-wal").exists() or (data / f"{name}-wal").stat().st_size == 0
            shutil.copy2(data / name, into / name)
        return
    for i, url in enumerate(_store_urls(env)):
        subprocess.run(["pg_dump", "--format=custom", f"--file={into / f'{i}.dump'}", url],
                       check=True, timeout=120)


def _restore(env: dict[str, str], source: Path) -> None:
    """Replace both stores with the backup, as after losing the database."""
    if not PG_URL:
        data = Path(env["CONSENTRY_DATA_DIR"])
        for name in SQLITE_FILES:
            for suffix in ("-wal", "-shm"):
                (data / f"{name}{suffix}").unlink(missing_ok=True)
            shutil.copy2(source / name, data / name)
        return
    for i, url in enumerate(_store_urls(env)):
        name = url.rpartition("/")[2]
        pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{name}"')
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={url}", str(source / f"{i}.dump")],
                       check=True, timeout=120)


def _post(client: httpx.Client, query: str, variables: dict[str, Any] | None = None,
          token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json={"query": query, "variables": variables or {}},
                           headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _login(client: httpx.Client, user_id: str) -> dict[str, Any]:
    return _post(client, LOGIN, {"u": user_id, "p": PASSWORD})


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


def _reshred(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONSENTRY, "restore", "reshred", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_restored_backup_does_not_resurrect_a_destroyed_member(deployment, tmp_path):
    env = deployment
    ids: dict[str, str] = {}
    with serve(env, tmp_path / "1.log") as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        for user in ("anna", "boris", "chloe"):
            body = _post(c, REGISTER, {"i": {"userId": user, "email": f"{user}@example.org",
                                             "fullName": f"{user.title()} Restore",
                                             "password": PASSWORD}})
            assert "errors" not in body, body
            ids[user] = body["data"]["register"]["member"]["id"]
    _back_up(env, tmp_path / "backup")

    with serve(env, tmp_path / "2.log") as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        token = _login(c, "boris")["data"]["login"]["accessToken"]
        assert _post(c, WITHDRAW, {"p": PASSWORD}, token) == {
            "data": {"withdrawMembership": {"destroyed": True}}}
        assert _code(_login(c, "boris")) == "UNAUTHENTICATED"

    shred_log = Path(env["CONSENTRY_SHRED_LOG"])
    entries = [json.loads(line) for line in shred_log.read_text().splitlines()]
    assert [e["member"] for e in entries] == [ids["boris"]]
    assert shred_log.stat().st_mode & 0o077 == 0

    _restore(env, tmp_path / "backup")
    with serve(env, tmp_path / "3.log") as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        back = _login(c, "boris")
        assert "errors" not in back, back  # the backup brought the destroyed member back
        assert back["data"]["login"]["member"] == {"id": ids["boris"], "userId": "boris",
                                                   "fullName": "Boris Restore"}

    done = _reshred(env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "logged": 1, "destroyed": 1, "absent": 0, "vaultShredded": 0, "failed": 0,
        "malformed": 0}

    with serve(env, tmp_path / "4.log") as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        assert _code(_login(c, "boris")) == "UNAUTHENTICATED"
        for user in ("anna", "chloe"):
            signed_in = _login(c, user)
            assert "errors" not in signed_in, signed_in
            me = _post(c, ME, token=signed_in["data"]["login"]["accessToken"])
            assert me == {"data": {"me": {"userId": user, "email": f"{user}@example.org",
                                          "fullName": f"{user.title()} Restore"}}}

    again = _reshred(env, "--log", env["CONSENTRY_SHRED_LOG"])
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {
        "logged": 1, "destroyed": 0, "absent": 1, "vaultShredded": 0, "failed": 0,
        "malformed": 0}
    # Replaying wrote nothing new to the log: it lists each destruction once.
    assert len(shred_log.read_text().splitlines()) == 1


def test_reshred_refuses_a_missing_log_and_reports_a_torn_line(deployment, tmp_path):
    missing = _reshred(deployment, "--log", str(tmp_path / "nowhere.log"))
    assert missing.returncode == 2
    assert "shred log" in missing.stderr and "Traceback" not in missing.stderr

    torn = tmp_path / "torn.log"
    torn.write_text('{"at": "2026-01-01T00:00:00+00:00", "member": '
                    '"0b0e6b1c-9a43-4f51-9a59-3c2b8f0e5d11"}\n{"at": "2026-01-0')
    done = _reshred(deployment, "--log", str(torn))
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "logged": 1, "destroyed": 0, "absent": 1, "vaultShredded": 0, "failed": 0,
        "malformed": 1}


async def test_a_replay_tells_partners_but_mails_and_records_nothing_new(rt, member, tmp_path):
    log = tmp_path / "shred.log"
    log.write_text(json.dumps({"at": "2026-01-01T00:00:00+00:00", "member": member.id}) + "\n")
    assert await reshred(rt, [log]) == {"logged": 1, "destroyed": 1, "absent": 0,
                                        "vaultShredded": 0, "failed": 0, "malformed": 0}
    assert not await Member.exists(id=member.id)
    assert await Notification.filter(kind="membership.withdrawn").count() == 0
    assert await DataRequest.all().count() == 0
    entry = await AuditEntry.get(action="member.withdraw", subject=member.id)
    assert (entry.actor, entry.detail["replay"]) == ("system:reshred", True)
    default_log = rt.settings.shred_log_path
    assert not default_log.exists() or member.id not in default_log.read_text()


async def test_a_dormant_copy_left_in_the_vault_is_shredded_and_tax_records_kept(rt, tmp_path):
    ghost = "5d1f3c9e-7b2a-4c1e-9f0a-2b6d8e4a1c33"
    until = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    await vault.store(rt, member_id=ghost, reason=vault.DORMANT, data={"memberKey": None},
                      retained_until=until)
    await vault.store(rt, member_id=ghost, reason=vault.TAX, data={"purchases": []},
                      retained_until=until)
    log = tmp_path / "shred.log"
    log.write_text(json.dumps({"at": "2026-01-01T00:00:00+00:00", "member": ghost}) + "\n")
    assert await reshred(rt, [log]) == {"logged": 1, "destroyed": 0, "absent": 1,
                                        "vaultShredded": 1, "failed": 0, "malformed": 0}
    left = await RetainedRecord.filter(member_id=ghost).values_list("reason", flat=True)
    assert left == ["TAX"]


def _production_keys(into: Path) -> dict[str, str]:
    """Key files in the formats production reads (README "Configuration")."""
    import base64
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    into.mkdir()
    kek = {"active": 1, "keys": {"1": base64.b64encode(secrets.token_bytes(32)).decode()}}
    (into / "kek.json").write_text(json.dumps(kek))
    (into / "signing.pem").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (into / "index.key").write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    return {"CONSENTRY_KEK_FILE": str(into / "kek.json"),
            "CONSENTRY_SIGNING_KEY_FILE": str(into / "signing.pem"),
            "CONSENTRY_INDEX_KEY_FILE": str(into / "index.key")}


def test_production_refuses_to_start_without_a_writable_shred_log(deployment, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {**deployment, **_production_keys(tmp_path / "keys"), "CONSENTRY_ENV": "production",
           "CONSENTRY_SHRED_LOG": str(blocker / "shred.log")}
    for args in (["serve", "--port", "1"], ["worker"], ["jobs", "run", "--only", "history_purge"]):
        done = subprocess.run([CONSENTRY, *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1, (args, done.stderr)
        assert "shred log" in done.stderr and "Traceback" not in done.stderr, done.stderr


async def test_a_dormant_member_whose_vault_copy_is_gone_is_still_removed(rt, member, tmp_path):
    """Main restored from before the destruction, vault from after: the member row is DORMANT
    and its vault record (its data and key) no longer exists. The remnant row must go too."""
    from api.members.dormancy import make_dormant

    assert await make_dormant(rt, member.id)
    await RetainedRecord.filter(member_id=member.id).delete()
    log = tmp_path / "shred.log"
    log.write_text(json.dumps({"at": "2026-01-01T00:00:00+00:00", "member": member.id}) + "\n")
    assert await reshred(rt, [log]) == {"logged": 1, "destroyed": 1, "absent": 0,
                                        "vaultShredded": 0, "failed": 0, "malformed": 0}
    assert not await Member.exists(id=member.id)
