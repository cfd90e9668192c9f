"""The ``consentry`` command line as an operator runs it: real subprocesses on a fresh data dir.

Each test gets its own data directory (SQLite, generated development keys), so the commands
are exercised exactly as on a new machine; ``keys rotate`` is checked end to end with a second
KEK version added to the key file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from schema import build_schema
from tests.conftest import PASSWORD

CONSENTRY = str(Path(sys.executable).with_name("consentry"))


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATA_DIR"] = str(tmp_path / "data")
    return env


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([CONSENTRY, *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=120)


def test_schema_prints_the_served_sdl(home):
    done = run(home, "schema")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == build_schema().as_str().strip()


def test_migrate_is_idempotent_on_a_fresh_machine(home):
    for _ in range(2):
        done = run(home, "migrate")
        assert done.returncode == 0, done.stderr
    data = Path(home["CONSENTRY_DATA_DIR"])
    assert (data / "consentry.sqlite3").exists() and (data / "vault.sqlite3").exists()
    keyfiles = sorted(p.name for p in (data / "keys").iterdir())
    assert keyfiles == ["index.key", "kek.json", "signing.pem"]
    for path in (data / "keys").iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"


def test_keys_rotate_rewraps_under_a_new_kek_and_admin_still_signs_in(home):
    created = run(home, "admin", "create", "--user-id", "keyadmin", "--email",
                  "keyadmin@clinic.example", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    secret = pyotp.parse_uri(created.stdout.strip().splitlines()[-1]).secret
    kek_path = Path(home["CONSENTRY_DATA_DIR"]) / "keys" / "kek.json"
    doc = json.loads(kek_path.read_text())
    doc["keys"]["2"] = base64.b64encode(secrets.token_bytes(32)).decode()
    doc["active"] = 2
    kek_path.write_text(json.dumps(doc))
    done = run(home, "keys", "rotate")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["admins"] == 1
    # Retire version 1: everything must now open with version 2 alone.
    del doc["keys"]["1"]
    kek_path.write_text(json.dumps(doc))
    again = run(home, "keys", "rotate")
    assert again.returncode == 0, again.stderr
    counts = json.loads(again.stdout.strip().splitlines()[-1])
    assert counts and set(counts.values()) == {0}, counts
    # The admin's sealed TOTP secret still opens: prove it through the real sign-in code.
    check = subprocess.run([sys.executable, "-c", f"""
import asyncio, pyotp
from api.service.composition import build_runtime
from api.members.auth import login
from api.core.clock import SystemClock
from api.platform.db import init_db, close_db
from api.platform.runtime import Runtime
async def main():
    rt = build_runtime(clock=SystemClock())
    await init_db(rt.settings)
    try:
        pair = await login(rt, "keyadmin", {PASSWORD!r}, pyotp.TOTP({secret!r}).now())
        print(pair.role)
    finally:
        await close_db()
asyncio.run(main())
"""], env=home, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().splitlines()[-1] == "ADMIN"


def test_audit_verify_on_a_fresh_trail(home):
    assert run(home, "admin", "create", "--user-id", "auditor", "--email", "a@clinic.example",
               stdin=PASSWORD + "\n").returncode == 0
    done = run(home, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "intact" in done.stdout


@pytest.mark.parametrize("args", [["nonsense"], ["admin"], ["admin", "create"], ["keys"],
                                  ["serve", "--port", "not-a-port"]])
def test_bad_usage_exits_2_without_a_traceback(home, args):
    done = run(home, *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "usage:" in done.stderr


def test_admin_create_reads_the_password_from_stdin_only(home):
    done = run(home, "admin", "create", "--user-id", "noinput", "--email", "n@clinic.example")
    assert done.returncode != 0 and "otpauth://" not in done.stdout
    assert "Traceback" not in done.stderr
