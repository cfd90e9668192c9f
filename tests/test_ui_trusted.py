"""The member's pages where only trusted documents are accepted.

With ``CONSENTRY_TRUSTED_DOCUMENTS_ONLY=true`` a server refuses any document from anonymous and
member callers that is not registered in ``schema/trusted/``. The privacy center (/account/),
the notices (/notices) and the session refresh in ``common/api.js`` send registered operations
by hash only: a member's whole life runs in Chromium against such a server, every request the
pages make is a hash, and every name the pages use is in the manifest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema.trusted import CLIENT_MAP, build, document_hash, load, operation_name, render_client_map
from tests.conftest import PASSWORD
from tests.helpers_browser import Site, axe_check, chromium, require_browser, site
from tests.helpers_serve import CONSENTRY
from tests.test_ui_account import ANNOUNCE, SEED_DISCLOSURE, _mailed_link

STATIC = Path(__file__).parents[1] / "api" / "service" / "static"
# The scripts that run for anonymous callers and members (the console's own operations are
# an admin's, who keeps ad-hoc documents; its sign-in is checked in tests/test_ui_banner.py).
MEMBER_SCRIPTS = sorted([*(STATIC / "account").glob("*.js"), *(STATIC / "notices").glob("*.js"),
                         STATIC / "common" / "api.js"])
NEW_PASSWORD = "a brand new passphrase 77"
NAMED = re.compile(r'\b(?:gqlTrusted|trustedData|registered)\(\s*"(\w+)"')


def _by_hash(site: Site, name: str, variables: dict[str, Any],
             token: str | None = None) -> dict[str, Any]:
    """A registered operation sent as the pages send it: the hash, no text."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{site.url}/graphql", headers=headers,
                          json={"variables": variables, "extensions": {"persistedQuery": {
                              "version": 1, "sha256Hash": _hashes()[name]}}}, timeout=60)
    body = response.json()
    assert not body.get("errors"), body
    return dict(body["data"])


def _admin_token(site: Site) -> str:
    """An admin created with the CLI, signed in as the console does (ConsoleLogin by hash)."""
    import pyotp

    done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", "trustadmin", "--email",
                           "trustadmin@clinic.example"], input=PASSWORD + "\n", env=site.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    secret = pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret
    data = _by_hash(site, "ConsoleLogin", {"u": "trustadmin", "p": PASSWORD,
                                           "otp": pyotp.TOTP(secret).now()})
    return str(data["login"]["accessToken"])


def _hashes() -> dict[str, str]:
    return {operation_name(text): digest for digest, text in load().items()}


def test_every_document_the_member_pages_send_is_registered() -> None:
    """The pages name operations; each name is a document of schema/trusted/manifest.json, the
    generated trusted.js matches the manifest, and no script keeps an ad-hoc document."""
    manifest = load()
    assert manifest == build(), "schema/trusted/manifest.json drifted: run `make trusted`"
    assert CLIENT_MAP.read_text(encoding="utf-8") == render_client_map(manifest), \
        "api/service/static/common/trusted.js drifted: run `make trusted`"
    served = dict(re.findall(r'^\s+(\w+): "([0-9a-f]{64})",$', CLIENT_MAP.read_text(), re.M))
    used: dict[str, set[str]] = {}
    for script in MEMBER_SCRIPTS:
        source = script.read_text(encoding="utf-8")
        for name in NAMED.findall(source):
            used.setdefault(name, set()).add(script.name)
        # No GraphQL text in the member scripts: no gql()/gqlData() call with a document, no
        # fetch of /graphql but api.js's one.
        assert not re.search(r"\bgql(?:Data)?\(\s*[`\"']", source), script
        assert not re.search(r"\b(?:query|mutation)\b(?:\s+\w+)?\s*(?:\([^)]*\)\s*)?\{", source), script
        assert not re.search(r"\{\s*(?:me|policy|purposes|outsourcingPartners)\s*\{", source), script
        if script.name != "api.js":
            assert not re.search(r"fetch\(\s*[`\"']/graphql", source), script
    assert "SessionRefresh" in used and used["SessionRefresh"] == {"api.js"}
    assert "NoticesPage" in used and "AccountCenter" in used and "AccountLogin" in used
    for name in used:
        assert name in served, f"{name} is not a registered document"
        assert manifest[served[name]].split("(")[0].split("{")[0].split()[-1] == name
        assert document_hash(manifest[served[name]]) == served[name]
    # Every Account*/Notices* document is one the pages use (none registered and forgotten).
    registered = {n for n in served if n.startswith(("Account", "Notices", "Session"))}
    assert registered == set(used), sorted(registered ^ set(used))
    assert not (STATIC / "account" / "caps.js").exists()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()
    with site(tmp_path_factory.mktemp("ui-trusted"),
              CONSENTRY_TRUSTED_DOCUMENTS_ONLY="true") as running:
        yield running


def test_the_server_refuses_ad_hoc_documents_from_members(live: Site) -> None:
    """The premise: this server holds anonymous callers to registered documents."""
    response = httpx.post(f"{live.url}/graphql", json={"query": "{ policy { version } }"})
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_members_whole_life_where_only_trusted_documents_are_accepted(live: Site) -> None:
    sent: list[dict[str, Any]] = []
    problems: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context(accept_downloads=True, locale="en-US", timezone_id="UTC")
        page = ctx.new_page()
        page.on("request", lambda r: sent.append(json.loads(r.post_data or "{}"))
                if r.url.endswith("/graphql") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("console", lambda m: problems.append(m.text)
                if m.type == "error" and "favicon" not in m.text else None)

        # The public notices, read by anyone.
        page.goto(f"{live.url}/notices")
        page.get_by_role("heading", name="Privacy policy in force: version 1.0").wait_for()

        # Sign up with the policy agreed and one optional purpose.
        page.goto(f"{live.url}/account/")
        form = page.locator("form", has=page.get_by_role("heading", name="Create an account"))
        form.get_by_label("User ID").fill("kim")
        form.get_by_label("Email").fill("kim@example.org")
        form.get_by_label("Full name").fill("Kim Example")
        form.get_by_label("Password").fill(PASSWORD)
        form.get_by_label("marketing", exact=True).check()
        form.get_by_label(re.compile("^Agree: ")).check()
        form.get_by_role("button", name="Create account").click()
        consents = page.locator("#consents")
        consents.wait_for()
        switch = consents.get_by_role("checkbox", name="marketing", exact=True)
        assert switch.is_checked()
        page.locator("#consents .switch", has=page.get_by_label("marketing", exact=True)).locator(
            ".receipt-status").filter(has_text=re.compile("^verified$")).wait_for()
        # The accounts screens are always there now: verification notice, sessions, password.
        assert page.locator("#sessions").is_visible()
        assert page.locator("#password").is_visible()
        page.get_by_text("Your email address is not verified yet.").wait_for()
        # The mailed link verifies the address (anonymous, by hash).
        page.goto(f"{live.url}{_mailed_link(live, 'kim@example.org', 'verify-email')}")
        page.get_by_text("Your email address is verified.").wait_for()
        page.locator("#consents").wait_for()
        assert page.get_by_text("Your email address is not verified yet.").count() == 0
        # One click withdraws.
        switch.click()
        page.locator("#consents .switch", has=page.get_by_label("marketing", exact=True)).get_by_text(
            re.compile("^Withdrawn on ")).wait_for()

        # Who has my data, and an announced partner the member objects to.
        token = page.evaluate("JSON.parse(sessionStorage.getItem('consentry.session')).token")
        member_id = _by_hash(live, "Me", {}, token)["me"]["id"]
        admin = _admin_token(live)
        partner_id = live.gql(ANNOUNCE, {"i": {
            "name": "Parcel Co", "kind": "LOGISTICS", "purpose": "order_fulfillment",
            "adapter": "recording", "fields": ["FULL_NAME", "ADDRESS"], "optionalFields": []}},
            token=admin)["announcePartner"]["partner"]["id"]
        seeded = subprocess.run([sys.executable, "-c", SEED_DISCLOSURE, member_id, partner_id,
                                 "Parcel Co"], env=live.env, capture_output=True, text=True,
                                timeout=120)
        assert seeded.returncode == 0, seeded.stderr
        page.reload()
        row = page.locator("#disclosures tbody tr").first
        row.wait_for()
        assert row.locator("td").all_inner_texts()[:2] == ["Parcel Co", "Full name, Address"]
        assert page.locator("#disclosures thead th").all_inner_texts()[-1] == "Deletion"
        coming = page.locator("#upcoming tbody tr", has_text="Parcel Co")
        coming.get_by_role("button", name="Object to Parcel Co").click()
        page.locator("#upcoming tbody tr", has_text="Parcel Co").get_by_text(
            "Objected", exact=True).wait_for()

        # Profile: the API's refusal sits by its field; then a good edit.
        profile = page.locator("#profile")
        profile.get_by_role("button", name="Edit profile").click()
        edit = profile.locator("form")
        edit.get_by_label("Email").fill("not an address")
        edit.get_by_role("button", name="Save").click()
        error = edit.locator(".field", has=page.get_by_label("Email")).locator(".field-error")
        error.wait_for()
        assert error.inner_text() == "email is not a valid address"
        edit.get_by_label("Email").fill("kim@example.org")
        edit.get_by_label("Phone").fill("+82 10 5555 0000")
        edit.get_by_role("button", name="Save").click()
        page.get_by_text("Profile saved.").wait_for()

        # Export and an inaccuracy report.
        with page.expect_download() as caught:
            page.get_by_role("button", name="Download my data").click()
        export = json.loads(Path(caught.value.path()).read_text())
        assert export["data"]["member"]["phone"] == "+82 10 5555 0000"
        report = page.locator("#inaccuracy form")
        report.get_by_label("Phone").check()
        report.get_by_role("button", name="Report").click()
        page.locator("#requests tbody tr", has_text="Correction").wait_for()

        # An access token the server no longer takes: the page refreshes the session (by hash).
        page.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('consentry.session'));
            s.token = 'expired'; sessionStorage.setItem('consentry.session', JSON.stringify(s)); }""")
        page.reload()
        page.get_by_text("Signed in as kim").wait_for()
        assert page.evaluate("JSON.parse(sessionStorage.getItem('consentry.session')).token") \
            != "expired"

        # Sign out; a forgotten password is reset through the mailed link; sign in again.
        page.get_by_role("button", name="Sign out", exact=True).click()
        forgot = page.locator("form", has=page.get_by_role("heading", name="Forgot your password?"))
        forgot.get_by_label("Email").fill("kim@example.org")
        forgot.get_by_role("button", name="Send me a reset link").click()
        page.get_by_text("If the address belongs to a verified account, a reset link is on its "
                         "way.").wait_for()
        page.goto(f"{live.url}{_mailed_link(live, 'kim@example.org', 'reset-password')}")
        reset = page.locator("form", has=page.get_by_role("heading", name="Reset your password"))
        reset.get_by_label("New password").fill(NEW_PASSWORD)
        reset.get_by_role("button", name="Set the new password").click()
        page.get_by_text("Your password was changed. Sign in with the new one.").wait_for()
        signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
        signin.get_by_label("User ID").fill("kim")
        signin.get_by_label("Password").fill(NEW_PASSWORD)
        signin.get_by_role("button", name="Sign in", exact=True).click()
        page.locator("#consents").wait_for()
        axe_check(page, label="privacy center, trusted documents only")

        # Withdraw membership: the signed receipt verifies in the browser.
        withdraw = page.locator("#withdraw form")
        withdraw.get_by_label("Password").fill(NEW_PASSWORD)
        withdraw.get_by_label("I understand that this cannot be undone").check()
        withdraw.get_by_role("button", name="Withdraw membership").click()
        page.get_by_role("heading", name="Withdrawal receipt").wait_for()
        assert "Partners told to erase\nParcel Co" in page.locator("#withdrawn dl").inner_text()
        page.locator("#withdrawn .receipt").get_by_text("verified", exact=True).wait_for()
        ctx.close()
    assert problems == []
    # Every request the pages made was a registered operation sent by hash, without its text.
    names = {operation_name(text): digest for digest, text in load().items()}
    by_digest = {digest: name for name, digest in names.items()}
    used = []
    for body in sent:
        assert "query" not in body, body
        used.append(by_digest[body["extensions"]["persistedQuery"]["sha256Hash"]])
    assert {"NoticesPage", "AccountPublic", "AccountRegister", "AccountGiveConsent",
            "AccountCenter", "AccountWithdrawConsent", "AccountObjectToPartner",
            "AccountUpdateProfile", "AccountExport", "AccountReportInaccuracy", "SessionRefresh",
            "AccountLogout", "AccountLogin", "AccountWithdrawMembership", "AccountVerifyEmail",
            "AccountRequestPasswordReset", "AccountResetPassword"} <= set(used), used


def test_passkeys_and_sessions_where_only_trusted_documents_are_accepted(live: Site) -> None:
    """Passkey sign-in is anonymous too; sessions, revocation and signing out everywhere are
    a member's."""
    from playwright.sync_api import expect

    _by_hash(live, "AccountRegister", {"i": {"userId": "lee", "email": "lee@example.org",
                                             "fullName": "Lee Example", "password": PASSWORD}})
    problems: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context(locale="en-US", timezone_id="UTC")
        page = ctx.new_page()
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        cdp = ctx.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True}})
        page.goto(f"{live.url}/account/")
        signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
        signin.get_by_label("User ID").fill("lee")
        signin.get_by_label("Password").fill(PASSWORD)
        signin.get_by_role("button", name="Sign in", exact=True).click()
        # The registration's session can be ended from here.
        other = page.locator("#sessions tbody tr", has_not_text="this device")
        other.get_by_role("button", name="Sign out this session").click()
        expect(page.locator("#sessions tbody tr")).to_have_count(1)
        keys = page.locator("#passkeys")
        keys.get_by_label("Passkey name").fill("phone")
        keys.get_by_role("button", name="Add a passkey").click()
        page.get_by_text("Passkey added.").wait_for()
        page.get_by_role("button", name="Sign out", exact=True).click()
        signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
        signin.get_by_role("button", name="Sign in with a passkey").click()
        page.get_by_text("Signed in as lee").wait_for()
        page.get_by_role("button", name="Sign out everywhere").click()
        page.get_by_role("heading", name="Sign in").wait_for()
        ctx.close()
    assert problems == []
