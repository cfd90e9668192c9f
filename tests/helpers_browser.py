"""Browser tests: Debian's Chromium driven by Playwright (sync API), axe-core and screenshots.

Playwright's own browser builds are not downloadable here, so the system Chromium is used;
when it (or Playwright) is missing the browser tests skip with the reason. CI installs it
(.ci/run). Use from plain (non-async) test functions: Playwright's sync API refuses to run
inside a running event loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as ``<screenshot_dir>/<name>.png`` and return its path."""
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
