"""Browser tests: Debian's Chromium driven by Playwright (sync API), axe-core and screenshots.

Playwright's own browser builds are not downloadable here, so the system Chromium is used;
when it (or Playwright) is missing the browser tests skip with the reason. CI installs it
(.ci/run). Use from plain (non-async) test functions: Playwright's sync API refuses to run
inside a running event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.helpers_rights import Smtp
from tests.helpers_serve import CONSENTRY, free_port, serve

CHROMIUM = os.environ.get("CONSENTRY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: axe-core impacts that fail a page.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"Chromium not installed at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


def require_browser() -> None:
    """Skip the calling test, with the reason, when no browser can be driven."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    require_browser()
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def axe_check(page: Any, *, label: str = "") -> list[dict[str, Any]]:
    """Run axe-core on ``page``; fail on any serious or critical violation (listed by rule id,
    impact and the first offending nodes). Returns all violations (minor ones included)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations: list[dict[str, Any]] = results.response.get("violations", [])
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    assert not blocking, f"axe-core on {label or page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n.get('target') for n in v.get('nodes', [])[:3]]}"
        for v in blocking)
    return violations


_shots: Path | None = None


def screenshot_dir() -> Path:
    """$CONSENTRY_SCREENSHOTS, else one temporary directory per test run."""
    global _shots
    if _shots is None:
        configured = os.environ.get("CONSENTRY_SCREENSHOTS")
        _shots = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="consentry-shots-"))
        _shots.mkdir(parents=True, exist_ok=True)
    return _shots


def screenshot(page: Any, name: str, *, full_page: bool = True, element: Any = None) -> Path:
    """Save a PNG of ``page`` (or of one ``element`` locator on it) as
    ``<screenshot_dir>/<name>.png`` and return its path."""
    path = screenshot_dir() / f"{name}.png"
    if element is not None:
        element.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


# -- a real server for the pages -----------------------------------------------------------------

@dataclasses.dataclass
class Site:
    """A running ``consentry serve`` (dev mode, SQLite) with a real SMTP server beside it."""

    url: str
    env: dict[str, str]
    smtp: Smtp

    def gql(self, query: str, variables: dict[str, Any] | None = None,
            token: str | None = None) -> dict[str, Any]:
        """POST /graphql; returns ``data``, failing the test on any error."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                              headers=headers, timeout=60)
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    def serves(self, type_name: str, field: str) -> bool:
        """Whether the schema has ``type_name.field`` (dev mode allows introspection)."""
        data = self.gql("query($t: String!) { __type(name: $t) { fields { name } } }", {"t": type_name})
        return field in {f["name"] for f in (data["__type"] or {}).get("fields") or []}

    def admin_token(self, user_id: str = "pageadmin") -> str:
        """Create an admin with the CLI (password on stdin, TOTP secret printed) and sign in."""
        import pyotp

        done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", user_id, "--email",
                               f"{user_id}@clinic.example"], input=PASSWORD + "\n", env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        secret = pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret
        data = self.gql("mutation($u: String!, $p: String!, $o: String) { login(userId: $u, "
                        "password: $p, otp: $o) { accessToken } }",
                        {"u": user_id, "p": PASSWORD, "o": pyotp.TOTP(secret).now()})
        return str(data["login"]["accessToken"])

    def run_jobs(self) -> None:
        """``consentry jobs run``: sends queued mail, delivers events (as the worker would)."""
        done = subprocess.run([CONSENTRY, "jobs", "run"], env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def site(tmp_path: Path, **settings: str) -> Iterator[Site]:
    """A fresh store under ``tmp_path``, an aiosmtpd server and ``consentry serve`` on both;
    ``settings`` are extra ``CONSENTRY_*`` values for the server."""
    from aiosmtpd.controller import Controller

    from tests.helpers_rights import _Collect, _free_port

    handler = _Collect()
    smtp_port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update({"CONSENTRY_DATA_DIR": str(tmp_path / "data"), "CONSENTRY_SMTP_HOST": "127.0.0.1",
                "CONSENTRY_SMTP_PORT": str(smtp_port), "CONSENTRY_SMTP_TLS": "none"})
    # The pages are opened at http://localhost:<port>, the public URL the server is told: mail
    # links point there, and passkeys need a host name (WebAuthn refuses IP addresses).
    port = free_port()
    env["CONSENTRY_PUBLIC_URL"] = f"http://localhost:{port}"
    env.update(settings)
    try:
        with serve_at(env, port, tmp_path / "serve.log") as url:
            yield Site(url, env, Smtp(handler, smtp_port))
    finally:
        controller.stop()


@contextlib.contextmanager
def serve_at(env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    """``consentry serve`` on a port chosen beforehand, named ``localhost`` (passkeys)."""
    with serve(env, log_path, port=port, host="localhost") as (url, _proc):
        yield url
