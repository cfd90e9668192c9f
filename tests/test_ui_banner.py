"""The embeddable cookie banner (/consent.js): the read-back query it uses, then the banner on a
page of another origin in Chromium, through a real ``consentry serve``: a script tagged
``type="text/plain" data-consent="analytics"`` runs only after analytics is accepted, the
choice is recorded under the device id and reads back through the API, axe-core passes."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import error_code
from tests.helpers_browser import axe_check, chromium, require_browser, screenshot
from tests.helpers_serve import free_port, serve

READ = """query($d: String!) { cookiePreferences(deviceId: $d) {
  deviceId necessary analytics personalization marketing } }"""
SET = """mutation($d: String!, $a: Boolean!, $p: Boolean!, $m: Boolean!) {
  setCookiePreferences(deviceId: $d, analytics: $a, personalization: $p, marketing: $m) { at } }"""


async def test_cookie_preferences_read_back_by_device_id(gql):
    assert (await gql(READ, {"d": "device-unknown"}))["data"]["cookiePreferences"] is None
    await gql(SET, {"d": "device-1", "a": True, "p": False, "m": False})
    await gql(SET, {"d": "device-1", "a": True, "p": True, "m": False})
    await gql(SET, {"d": "device-2", "a": False, "p": False, "m": True})
    body = await gql(READ, {"d": "device-1"})
    assert body["data"]["cookiePreferences"] == {
        "deviceId": "device-1", "necessary": True, "analytics": True, "personalization": True,
        "marketing": False}


async def test_cookie_preferences_refuses_a_bad_device_id(gql):
    body = await gql(READ, {"d": " padded "})
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "deviceId"


# --- the banner on another origin, in Chromium ------------------------------------------------

SITE_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Riverside Clinic</title>
  <link rel="icon" href="data:,">
  <script src="/site.js"></script>
  <script src="{api}/consent.js"></script>
  <script type="text/plain" data-consent="analytics" src="/analytics.js"></script>
  <script type="text/plain" data-consent="marketing" src="/marketing.js"></script>
</head>
<body>
  <main>
    <h1>Riverside Clinic</h1>
    <p>Opening hours: Monday to Friday.</p>
    <button type="button" data-consentry-open>Cookie settings</button>
  </main>
</body>
</html>
"""
SITE_FILES = {
    "/site.js": "window.consentryEvents = [];\n"
                "window.consentryReady = [];\n"
                "window.addEventListener('consentry:change', function (e) {\n"
                "  window.consentryEvents.push(e.detail);\n});\n"
                "window.addEventListener('consentry:ready', function (e) {\n"
                "  window.consentryReady.push(e.detail);\n});\n",
    "/analytics.js": "window.analyticsRuns = (window.analyticsRuns || 0) + 1;\n",
    "/marketing.js": "window.marketingRuns = (window.marketingRuns || 0) + 1;\n",
}


BANNER_READ_HASH = "c20f4cd77563499c4c822653b1147e7303932eae29ab2d009a587b76e4c86685"


def read_back(api: str, device: str) -> dict[str, bool]:
    """The device's recorded choice, through the API (the registered read, by hash: the server
    under test takes nothing else from anonymous callers)."""
    body = httpx.post(f"{api}/graphql", json={"variables": {"d": device}, "extensions": {
        "persistedQuery": {"version": 1, "sha256Hash": BANNER_READ_HASH}}}).json()
    assert "errors" not in body, body
    choice = body["data"]["cookiePreferences"]
    return {k: choice[k] for k in ("analytics", "personalization", "marketing")}


@contextlib.contextmanager
def clinic_site(api: str) -> Iterator[str]:
    """The embedding site: another origin, under a strict CSP of its own (no inline script or
    style; the API origin allowed for the banner's script, stylesheet and requests)."""
    port = free_port()
    csp = (f"default-src 'self'; script-src 'self' {api}; style-src 'self' {api}; "
           f"connect-src 'self' {api}; img-src 'self' data:; base-uri 'none'")
    page = SITE_PAGE.replace("{api}", api)
    files = {"/": ("text/html", page),
             "/ko": ("text/html", page.replace('<html lang="en">', '<html lang="ko">')),
             **{path: ("text/javascript", body) for path, body in SITE_FILES.items()}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            kind, body = found
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", f"{kind}; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.send_header("content-security-policy", csp)
            self.send_header("cache-control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_banner_on_another_origin_gates_tagged_scripts_until_consent(tmp_path):
    require_browser()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATA_DIR"] = str(tmp_path / "data")
    # The banner is an anonymous first-party client: it sends registered documents by hash,
    # so it works where nothing else anonymous is accepted.
    env["CONSENTRY_TRUSTED_DOCUMENTS_ONLY"] = "true"
    # Each origin names the other: the site's page loads the API's script, the API's
    # CONSENTRY_CORS_ORIGINS lists the site. So the API's port is chosen first.
    with contextlib.ExitStack() as stack:
        api_port = free_port()
        api = f"http://127.0.0.1:{api_port}"
        site = stack.enter_context(clinic_site(api))
        env["CONSENTRY_CORS_ORIGINS"] = site
        url, _proc = stack.enter_context(serve(env, tmp_path / "serve.log", port=api_port))
        assert url == api
        browser = stack.enter_context(chromium())
        page = browser.new_page(viewport={"width": 1000, "height": 800}, locale="en-GB")
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

        def axe(label: str) -> None:
            # axe-core itself sets inline styles while it measures; the site's CSP refuses them.
            # Those reports are the tool's, not the banner's: drop them, keep anything else.
            before = len(problems)
            axe_check(page, label=label)
            problems[before:] = [p for p in problems[before:] if "inline style" not in p]

        page.goto(f"{site}/")
        banner = page.get_by_role("region", name="Cookies on this site")
        banner.wait_for()
        # Before any choice: the tagged scripts have not run, nothing is allowed but necessary.
        assert page.evaluate("window.analyticsRuns") is None
        assert page.evaluate("window.consentry.allowed('analytics')") is False
        assert page.evaluate("window.consentry.allowed('necessary')") is True
        necessary = banner.get_by_label("Necessary")
        assert necessary.is_checked() and necessary.is_disabled()
        assert page.evaluate("getComputedStyle(document.querySelector('.consentry-banner'))"
                             ".position") == "fixed"  # the stylesheet from the API origin applies
        screenshot(page, "banner")
        axe("cookie banner")

        banner.get_by_role("button", name="Choose").click()
        banner.get_by_label("Analytics").check()
        screenshot(page, "banner-choices")
        axe("cookie banner with choices open")
        banner.get_by_role("button", name="Save my choices").click()
        page.wait_for_function("() => window.analyticsRuns === 1")
        assert banner.is_hidden()
        assert page.evaluate("window.marketingRuns") is None
        assert page.evaluate("window.consentry.allowed('analytics')") is True
        assert page.evaluate("window.consentry.allowed('marketing')") is False
        events = page.evaluate("window.consentryEvents")
        assert [(e["analytics"], e["personalization"], e["marketing"]) for e in events] == [
            (True, False, False)]
        saved = page.evaluate("window.consentry.saved().then(c => c.at)")
        assert saved

        # The choice is recorded under the device id the site keeps (its own localStorage).
        device = page.evaluate("localStorage.getItem('consentry.device')")
        assert device and device == page.evaluate("window.consentry.deviceId()")
        assert read_back(api, device) == {"analytics": True, "personalization": False,
                                          "marketing": False}

        # Next visit: no banner, the consented script runs at once, the other still waits.
        page.reload()
        page.wait_for_function("() => window.analyticsRuns === 1")
        assert page.evaluate("window.marketingRuns") is None
        assert banner.is_hidden()
        assert page.evaluate("window.consentryEvents") == []  # nothing changed: no change event
        assert [e["analytics"] for e in page.evaluate("window.consentryReady")] == [True]

        # The site's own "Cookie settings" button reopens it; a change applies and is recorded.
        page.get_by_role("button", name="Cookie settings").click()
        banner.wait_for()
        assert page.evaluate("document.activeElement.textContent") == "Accept all"
        banner.get_by_role("button", name="Accept all").click()
        page.wait_for_function("() => window.marketingRuns === 1")
        assert page.evaluate("document.activeElement.textContent") == "Cookie settings"
        assert page.evaluate("window.analyticsRuns") == 1  # a script runs once, never twice
        assert [e["marketing"] for e in page.evaluate("window.consentryEvents")] == [True]
        page.evaluate("window.consentry.saved()")
        assert read_back(api, device) == {"analytics": True, "personalization": True,
                                          "marketing": True}

        # On a phone-sized screen, in Korean (the page's language picks the banner's).
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{site}/ko")
        page.get_by_role("button", name="Cookie settings").click()
        korean = page.get_by_role("region", name="이 사이트의 쿠키")
        korean.wait_for()
        assert korean.get_by_role("button", name="모두 허용").is_visible()
        screenshot(page, "banner-phone-ko")
        axe("cookie banner, Korean, phone")
        assert problems == [], problems


def test_documents_the_pages_send_by_hash_are_registered():
    """The banner and the console's sign-in send registered documents (text and SHA-256): each
    pair in the scripts must be a document of schema/trusted/manifest.json, or a server holding
    anonymous callers to trusted documents refuses them."""
    import re

    from schema.trusted import document_hash, load

    static = Path(__file__).parents[1] / "api" / "service" / "static"
    manifest = load()
    pairs = []
    for script in (static / "banner" / "consent.js", static / "console" / "app.js"):
        source = script.read_text(encoding="utf-8")
        for text, digest in re.findall(r'text:\s*((?:"[^"]*"\s*\+?\s*)+),\s*sha256:\s*"([0-9a-f]{64})"',
                                       source):
            joined = "".join(re.findall(r'"([^"]*)"', text))
            pairs.append((script.name, joined, digest))
    assert {name for name, _, _ in pairs} == {"consent.js", "app.js"} and len(pairs) == 4, pairs
    for name, text, digest in pairs:
        assert document_hash(text) == digest, (name, text)
        assert manifest.get(digest) == text, (name, text)
