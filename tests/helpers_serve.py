"""Run the real ``consentry serve`` in a subprocess for end-to-end tests (fuzzing, faults)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CONSENTRY = str(Path(sys.executable).with_name("consentry"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(env: dict[str, str], log_path: Path, *,
          timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the server, wait for ``/readyz``, yield its URL and process; always stop it
    (SIGTERM, then SIGKILL: a wedged server must never leak into later tests)."""
    port = free_port()
    log = log_path.open("w")
    proc = subprocess.Popen([CONSENTRY, "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "consentry serve did not become ready"
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()
