"""Encryption at rest: the raw store holds no personal value; shredding and rotation work.

The scan reads what an attacker with the disk or a dump would read: the SQLite files' bytes
(after a WAL checkpoint, and the WAL itself), or every row of every PostgreSQL table as text,
for both the main store and the vault.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets
import subprocess
from pathlib import Path

import pytest
from tortoise import connections

from api.core.errors import NotFound
from api.core.settings import Settings
from api.members.records import data_key, get_view
from api.models.member import Member, MemberKey
from api.security.envelope import DataKey, UndecryptableError, unwrap
from api.security.keys import DevelopmentKeysRefused, KeyRing
from api.service.keys_rotation import rotate
from tests import helpers_rights
from tests.conftest import PASSWORD, register_member
from tests.helpers_accounts import confirm_email
from tests.helpers_hardening import write_production_keys

smtp, mail_rt = helpers_rights.smtp, helpers_rights.mail_rt  # fixtures

PERSONAL = {
    "userId": "zqfeather77",
    "email": "zebulon.quartzfeather@unusual-domain.example",
    "fullName": "Zebulon Quartzfeather",
    "phone": "+44 20 7946 0999",
    "address": "42 Obscure Lane, Nowhereville",
    "dateOfBirth": "1977-07-07",
}
UPDATED = {
    "email": "xanthippe.marchbanks@rare-domain.example",
    "fullName": "Xanthippe Marchbanks",
    "phone": "+44 161 496 0777",
    "address": "7 Hidden Mews, Quietborough",
}


def _needles(values: list[str]) -> dict[str, list[bytes]]:
    """Each value in the encodings a leak could take: UTF-8, lower case, hex (bytea as text)."""
    out = {}
    for value in values:
        forms = {value.encode(), value.lower().encode(), value.encode("utf-16-le")}
        forms |= {f.hex().encode() for f in list(forms)}
        forms.add(base64.b64encode(value.encode()))
        out[value] = sorted(forms)
    return out


async def _sqlite_bytes(alias: str) -> bytes:
    conn = connections.get(alias)
    await conn.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
    return _read_with_sidecars(Path(conn.filename))


def _read_with_sidecars(path: Path) -> bytes:
    """The files' bytes, read by a child process.

    Opening and closing the database file in this process would drop SQLite's POSIX locks on
    it (fcntl locks are per process), and the next connection from another process (the CLI
    tests) would then reset the WAL under our live connection.
    """
    files = [str(p) for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    return subprocess.run(["cat", *files], capture_output=True, check=True).stdout


async def _postgres_text(alias: str) -> bytes:
    conn = connections.get(alias)
    tables = await conn.execute_query_dict(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    chunks = []
    for row in tables:
        rows = await conn.execute_query_dict(f'SELECT t::text AS line FROM "{row["tablename"]}" t')
        chunks += [r["line"] for r in rows]
    return "\n".join(chunks).encode()


async def _raw_store() -> bytes:
    data = b""
    for alias in ("default", "vault"):
        if connections.get(alias).capabilities.dialect == "postgres":
            data += await _postgres_text(alias)
        else:
            data += await _sqlite_bytes(alias)
    return data


def _leaks(raw: bytes, values: list[str]) -> list[str]:
    return [value for value, forms in _needles(values).items() if any(f in raw for f in forms)]


async def test_store_holds_no_personal_value_in_plaintext(gql, rt, mail_rt, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    account = await register_member(gql, PERSONAL["userId"], **{
        k: v for k, v in PERSONAL.items() if k != "userId"})
    await register_member(gql, "second-member", phone="+1 555 010 9999",
                          address="9 Unlikely Boulevard, Farfield")
    # Exercise the paths that write around a member: profile edits, consent, requests, export.
    body = await gql("""mutation($i: ProfileInput!) { updateProfile(input: $i) { id } }""",
                     {"i": {"phone": UPDATED["phone"]}}, token=account.token)
    assert "errors" not in body, body
    version = (await gql("{ policy { version } }"))["data"]["policy"]["version"]
    for mutation in (
        'mutation($v: String!) { giveConsent(purpose: "marketing", policyVersion: $v) { state } }',
        'mutation { reportInaccuracy(fields: [ADDRESS], note: "typo") { id } }',
        "mutation { exportMyData { format } }",
    ):
        body = await gql(mutation, {"v": version} if "$v" in mutation else None,
                         token=account.token)
        assert "errors" not in body, body
    await gql("mutation($i: ProfileInput!) { updateProfile(input: $i) { id } }",
              {"i": {k: v for k, v in UPDATED.items() if k != "phone"}}, token=account.token)
    await confirm_email(gql, mail_rt, smtp, UPDATED["email"])  # the new address takes effect
    # The values really are there (decrypted through the API)...
    me = (await gql("{ me { email fullName phone address } }", token=account.token))["data"]["me"]
    assert me == {"email": UPDATED["email"], "fullName": UPDATED["fullName"],
                  "phone": UPDATED["phone"], "address": UPDATED["address"]}
    # ...and nowhere in the raw store, nor in the logs.
    values = list(PERSONAL.values()) + list(UPDATED.values()) + [
        "+1 555 010 9999", "9 Unlikely Boulevard, Farfield", "Second-Member Example"]
    raw = await _raw_store()
    assert len(raw) > 1000
    assert _leaks(raw, values) == []
    # The test relay's own log (aiosmtpd, "mail.log") shows the envelope: it is not ours.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert _leaks(ours.encode(), values) == []
    # Passwords are not stored either (only an argon2id hash).
    assert _leaks(raw, [PASSWORD]) == []
    assert b"$argon2id$" in raw


async def test_the_scan_would_find_a_plaintext_value(rt, member):
    """Control: the scanner does see a value written in clear (so silence above means absence)."""
    from api.platform.audit import record

    await record(rt, "test", "scan.control", "probe", {"note": "Plaintext Canary Value"})
    assert _leaks(await _raw_store(), ["Plaintext Canary Value"]) == ["Plaintext Canary Value"]


async def test_destroying_the_data_key_makes_fields_unrecoverable(rt, member):
    row = await Member.get(id=member.id)
    key_row = await MemberKey.get(member_id=member.id)
    saved = bytes(key_row.wrapped)
    await MemberKey.filter(member_id=member.id).delete()
    with pytest.raises((NotFound, UndecryptableError)):
        await get_view(rt, member.id)
    with pytest.raises(NotFound):
        await data_key(rt, member.id)
    # Any other key fails to authenticate the ciphertexts: nothing is recoverable without it.
    for guess in (DataKey(secrets.token_bytes(32), member.id), DataKey(bytes(32), member.id)):
        with pytest.raises(UndecryptableError):
            guess.decrypt("email", bytes(row.email_ct))
    # The wrapped key itself is bound to its member: it will not unwrap for another id.
    with pytest.raises(UndecryptableError):
        unwrap(rt.keys, saved, key_row.kek_version, "00000000-0000-0000-0000-000000000000")


async def test_ciphertexts_are_bound_to_member_and_field(rt, member, other_member):
    alice, bob = await Member.get(id=member.id), await Member.get(id=other_member.id)
    key = await data_key(rt, member.id)
    assert key.decrypt("email", bytes(alice.email_ct)) == "alice@example.org"
    with pytest.raises(UndecryptableError):  # moved to another column
        key.decrypt("full_name", bytes(alice.email_ct))
    with pytest.raises(UndecryptableError):  # another member's ciphertext
        key.decrypt("email", bytes(bob.email_ct))
    tampered = bytearray(alice.email_ct)
    tampered[-1] ^= 1
    with pytest.raises(UndecryptableError):
        key.decrypt("email", bytes(tampered))
    # Copying Bob's ciphertext into Alice's row does not reveal Bob's email.
    await Member.filter(id=member.id).update(email_ct=bytes(bob.email_ct))
    with pytest.raises(UndecryptableError):
        await get_view(rt, member.id)


async def test_key_rotation_rewraps_data_keys_without_touching_fields(rt, gql, member,
                                                                      other_member):
    before = {str(m.id): bytes(m.email_ct) for m in await Member.all()}
    new_kek = secrets.token_bytes(32)
    rotated = dataclasses.replace(rt, extras={}, keys=dataclasses.replace(
        rt.keys, keks={**rt.keys.keks, 2: new_kek}, active_kek=2))
    counts = await rotate(rotated)
    assert counts["member_keys"] == 2
    assert {k.kek_version for k in await MemberKey.all()} == {2}
    # Field ciphertexts are untouched; members still decrypt under the new ring.
    assert {str(m.id): bytes(m.email_ct) for m in await Member.all()} == before
    assert (await get_view(rotated, member.id)).email == "alice@example.org"
    # The old ring alone (KEK 1 only) can no longer open the keys: version 2 is not loaded.
    with pytest.raises(UndecryptableError):
        await get_view(rt, member.id)
    # Retiring KEK 1 from the ring still works for everyone.
    retired = dataclasses.replace(rt, extras={}, keys=dataclasses.replace(
        rt.keys, keks={2: new_kek}, active_kek=2))
    assert (await get_view(retired, other_member.id)).user_id == "bob"
    # Running it again is a no-op.
    assert (await rotate(rotated))["member_keys"] == 0


async def test_key_rotation_keeps_admin_totp_usable(rt, gql, admin, clock):
    import pyotp

    from api.members.auth import _open_secret
    from api.models.member import Admin

    rotated = dataclasses.replace(rt, extras={}, keys=dataclasses.replace(
        rt.keys, keks={**rt.keys.keks, 2: secrets.token_bytes(32)}, active_kek=2))
    assert (await rotate(rotated))["admins"] == 1
    row = await Admin.get(user_id="root-admin")
    secret = _open_secret(rotated, bytes(row.totp_secret_ct), str(row.id))
    assert pyotp.TOTP(secret).verify(pyotp.TOTP(secret).at(clock.now()), for_time=clock.now())


def test_production_refuses_development_keys(tmp_path):
    with pytest.raises(DevelopmentKeysRefused):
        KeyRing.load(Settings(env="production", data_dir=tmp_path))
    # Development generated keys, pointed at explicitly, are still refused in production.
    KeyRing.load(Settings(data_dir=tmp_path))
    keydir = tmp_path / "keys"
    files = {"kek_file": str(keydir / "kek.json"), "signing_key_file": str(keydir / "signing.pem"),
             "index_key_file": str(keydir / "index.key")}
    with pytest.raises(DevelopmentKeysRefused):
        KeyRing.load(Settings(env="production", data_dir=tmp_path, **files))
    # Operator-provided keys load.
    ring = KeyRing.load(Settings(env="production", data_dir=tmp_path,
                                 **write_production_keys(tmp_path / "prod")))
    assert not ring.generated and ring.kid and "key" not in repr(ring).replace("KeyRing", "")


def test_production_serve_refuses_to_start_with_development_keys(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "CONSENTRY_ENV": "production", "CONSENTRY_DATA_DIR": str(tmp_path)}
    env.pop("CONSENTRY_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "api.service.cli", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DevelopmentKeysRefused" in done.stderr or "development keys" in done.stderr.lower()
