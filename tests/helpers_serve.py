"""Run the real ``consentry serve`` in a subprocess for end-to-end tests (fuzzing, faults)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

CONSENTRY = str(Path(sys.executable).with_name("consentry"))
PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL: a wedged process must never leak into later tests."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


@contextlib.contextmanager
def serve(env: dict[str, str], log_path: Path, *, timeout: float = 60, port: int | None = None,
          host: str = "127.0.0.1") -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the server, wait for ``/readyz``, yield its URL and process; always stop it.
    ``port`` when the caller chose it beforehand (a page that names the API origin);
    ``host`` names the URL (``localhost`` for passkeys: WebAuthn refuses IP addresses)."""
    port = port or free_port()
    log = log_path.open("w")
    proc = subprocess.Popen([CONSENTRY, "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "consentry serve did not become ready"
            time.sleep(0.1)
        yield f"http://{host}:{port}", proc
    finally:
        stop(proc)
        log.close()


def pg_admin(sql: str) -> None:
    """Run one statement as the PostgreSQL test server's admin (create or drop a database)."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def fresh_store(tmp_path: Path, tag: str, **settings: str) -> Iterator[dict[str, str]]:
    """The environment of one deployment for real ``consentry`` processes: no inherited
    ``CONSENTRY_*`` setting, one data directory, and under ``CONSENTRY_TEST_DATABASE_URL`` a
    fresh PostgreSQL database pair, dropped afterwards (else SQLite files in the data
    directory). ``settings`` are extra ``CONSENTRY_*`` values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATA_DIR"] = str(tmp_path / "data")
    env.update(settings)
    names: list[str] = []
    if PG_URL:
        suffix = uuid.uuid4().hex[:10]
        names = [f"consentry_{tag}_{suffix}", f"consentry_{tag}_{suffix}_vault"]
        for name in names:
            pg_admin(f'CREATE DATABASE "{name}"')
        base = PG_URL.rpartition("/")[0]
        env["CONSENTRY_DATABASE_URL"] = f"{base}/{names[0]}"
        env["CONSENTRY_VAULT_DATABASE_URL"] = f"{base}/{names[1]}"
    try:
        yield env
    finally:
        for name in names:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
