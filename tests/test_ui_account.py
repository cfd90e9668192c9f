"""The member privacy center (/account/) in Chromium, through a real ``consentry serve``.

A member's whole life (sign up with the policy agreed and one optional purpose, consents that
verify in the browser, who has my data, export as a download, an inaccuracy report, withdrawal
with its receipt), axe-core on every page state, the strict CSP on the pages, no token in
localStorage, the verify-email and password-reset links from real mail, sessions and passkeys.
The same life where only trusted documents are accepted: tests/test_ui_trusted.py.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import PASSWORD
from tests.helpers_browser import Site, axe_check, chromium, require_browser, screenshot, site

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

# Writes one disclosure to the ledger, as a push to the partner would, in the server's store.
SEED_DISCLOSURE = textwrap.dedent("""
    import asyncio, sys
    from api.models.enums import LegalBasis
    from api.platform.db import close_db, init_db
    from api.service.composition import build_runtime
    from api.sharing import ledger

    async def main(member_id, partner_id, name):
        rt = build_runtime()
        await init_db(rt.settings)
        try:
            await ledger.write(None, [ledger.Entry(member_id, partner_id, name,
                ["ADDRESS", "FULL_NAME"], "order_fulfillment", LegalBasis.CONTRACT, "push",
                rt.now())])
        finally:
            await close_db()

    asyncio.run(main(*sys.argv[1:]))
""")

ANNOUNCE = """mutation($i: PartnerInput!) { announcePartner(input: $i) { partner { id } } }"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()
    with site(tmp_path_factory.mktemp("ui-account")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _context(browser: Any, **extra: Any) -> Any:
    return browser.new_context(accept_downloads=True, locale="en-US", timezone_id="UTC", **extra)


def _watch(page: Any) -> list[str]:
    """Collects CSP refusals and uncaught page errors (there must be none)."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text
            or m.type == "error" and "favicon" not in m.text else None)
    return problems


def _signup(page: Any) -> Any:
    return page.locator("form", has=page.get_by_role("heading", name="Create an account"))


def _switch(page: Any, purpose: str) -> Any:
    return page.locator("#consents").get_by_role("checkbox", name=purpose, exact=True)


def _receipt_status(page: Any, purpose: str) -> Any:
    return page.locator("#consents .switch", has=page.get_by_label(purpose, exact=True)).locator(
        ".receipt-status")


def _register(live: Site, user_id: str) -> dict[str, Any]:
    return live.gql("mutation($i: RegisterInput!) { register(input: $i) { accessToken "
                    "refreshToken member { id } } }",
                    {"i": {"userId": user_id, "email": f"{user_id}@example.org",
                           "fullName": "Pat Example", "password": PASSWORD}})["register"]


def test_a_members_whole_life(live: Site, browser: Any, tmp_path: Path) -> None:
    ctx = _context(browser)
    page = ctx.new_page()
    problems = _watch(page)
    page.goto(f"{live.url}/account/")
    form = _signup(page)
    form.get_by_role("heading", name="Create an account").wait_for()
    # Mandatory and optional fields are marked as such; nothing optional is ticked.
    assert form.get_by_label("User ID").is_visible()
    assert form.locator("label", has_text="Full name").inner_text() == "Full name(required)"
    assert form.locator("label", has_text="Phone").inner_text() == "Phone(optional)"
    for purpose in ("marketing", "personalization", "health_data", "research"):
        assert not form.get_by_label(purpose, exact=True).is_checked()
    assert "Consentry privacy policy and terms of use, version 1.0" in form.locator(
        ".policy-text").inner_text()
    axe_check(page, label="sign-up")
    screenshot(page, "account-signup")

    form.get_by_label("User ID").fill("pat")
    form.get_by_label("Email").fill("pat@example.org")
    form.get_by_label("Full name").fill("Pat Example")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("Phone").fill("+82 10 1234 5678")
    form.get_by_label("marketing", exact=True).check()
    # Without "Agree" there is no account: the refusal sits by the checkbox.
    form.get_by_role("button", name="Create account").click()
    refusal = form.locator(".field-error")
    refusal.wait_for()
    assert refusal.inner_text() == "Please agree to the privacy policy to create an account."
    form.get_by_label(re.compile("^Agree: ")).check()
    form.get_by_role("button", name="Create account").click()

    # Consents: marketing given at sign-up with a receipt that verifies in the browser.
    page.locator("#consents").wait_for()
    assert _switch(page, "marketing").is_checked()
    assert not _switch(page, "research").is_checked()
    _receipt_status(page, "marketing").filter(has_text=re.compile("^verified$")).wait_for()
    assert "Given under policy version 1.0" in page.locator(
        "#consents .switch", has=page.get_by_label("marketing", exact=True)).inner_text()
    # Tokens live in sessionStorage, never in localStorage.
    assert page.evaluate("localStorage.length") == 0
    # One click gives, one click withdraws (Art. 8.2).
    _switch(page, "research").click()
    _receipt_status(page, "research").filter(has_text=re.compile("^verified$")).wait_for()
    assert _switch(page, "research").is_checked()
    _switch(page, "marketing").click()
    page.locator("#consents .switch", has=page.get_by_label("marketing", exact=True)).get_by_text(
        re.compile("^Withdrawn on ")).wait_for()
    assert not _switch(page, "marketing").is_checked()
    _receipt_status(page, "marketing").filter(has_text=re.compile("^verified$")).wait_for()
    axe_check(page, label="consents")
    screenshot(page, "account-consents", element=page.locator("#consents"))
    # The downloaded receipt is the signed record of the withdrawal.
    with page.expect_download() as caught:
        page.get_by_role("button", name="Download the receipt for marketing").click()
    jws = Path(caught.value.path()).read_text()
    claims = json.loads(base64.urlsafe_b64decode(jws.split(".")[1] + "=="))
    assert (claims["purpose"], claims["state"], claims["policyVersion"]) == (
        "marketing", "WITHDRAWN", "1.0")

    # Who has my data: a partner that received two fields on a contract basis.
    token = page.evaluate("JSON.parse(sessionStorage.getItem('consentry.session')).token")
    member_id = live.gql("{ me { id } }", token=token)["me"]["id"]
    admin = live.admin_token()
    partner_id = live.gql(ANNOUNCE, {"i": {
        "name": "Parcel Co", "kind": "LOGISTICS", "purpose": "order_fulfillment",
        "adapter": "recording", "fields": ["FULL_NAME", "ADDRESS"], "optionalFields": []}},
        token=admin)["announcePartner"]["partner"]["id"]
    seeded = subprocess.run([sys.executable, "-c", SEED_DISCLOSURE, member_id, partner_id, "Parcel Co"],
                            env=live.env, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    page.reload()
    rows = page.locator("#disclosures tbody tr")
    rows.first.wait_for()
    cells = rows.first.locator("td").all_inner_texts()
    assert (cells[0], cells[1], cells[3]) == ("Parcel Co", "Full name, Address",
                                               "Contract (order_fulfillment)")
    assert page.locator("#disclosures thead th").all_inner_texts()[-1] == "Deletion"
    axe_check(page, label="who has my data")
    # Parcel Co is announced, not yet in force: it concerns this member.
    coming = page.locator("#upcoming tbody tr", has_text="Parcel Co")
    coming.wait_for()
    coming.get_by_role("button", name="Object to Parcel Co").click()
    page.locator("#upcoming tbody tr", has_text="Parcel Co").get_by_text(
        "Objected", exact=True).wait_for()
    axe_check(page, label="upcoming partner changes")
    screenshot(page, "account-disclosures", element=page.locator("#disclosures"))

    # Profile: an error from the API appears next to the field it concerns; then a good edit.
    profile = page.locator("#profile")
    profile.get_by_role("button", name="Edit profile").click()
    edit = profile.locator("form")
    edit.get_by_label("Email").fill("not an address")
    edit.get_by_role("button", name="Save").click()
    error = edit.locator(".field", has=page.get_by_label("Email")).locator(".field-error")
    error.wait_for()
    assert error.inner_text() == "email is not a valid address"
    edit.get_by_label("Email").fill("pat@example.org")
    edit.get_by_label("Address").fill("1 Harbour Road, Busan")
    edit.get_by_role("button", name="Save").click()
    page.get_by_text("Profile saved.").wait_for()
    assert "Address\n1 Harbour Road, Busan\n" in page.locator("#profile dl").inner_text()

    # Export: a file download of exportMyData's JSON.
    with page.expect_download() as caught:
        page.get_by_role("button", name="Download my data").click()
    assert caught.value.suggested_filename == "consentry-export-pat.json"
    export = json.loads(Path(caught.value.path()).read_text())
    assert export["format"] == "consentry.export/v1"
    assert export["data"]["member"]["phone"] == "+82 10 1234 5678"
    assert [d["partner"] for d in export["data"]["disclosures"]] == ["Parcel Co"]

    # Report an inaccuracy: it becomes a correction request with a due date.
    report = page.locator("#inaccuracy form")
    report.get_by_label("Phone").check()
    report.get_by_label("Note (optional)").fill("the last digits are 5679")
    report.get_by_role("button", name="Report").click()
    correction = page.locator("#requests tbody tr", has_text="Correction")
    correction.wait_for()
    request = correction.locator("td").all_inner_texts()
    assert (request[0], request[1], request[4]) == ("Correction (Phone)", "Open", "—")
    assert request[3] != ""
    # The export was recorded as a portability request, completed at once.
    exported = page.locator("#requests tbody tr", has_text="Portability").locator("td").all_inner_texts()
    assert exported[:2] == ["Portability", "Completed"]
    axe_check(page, label="requests")

    # Withdraw membership with the password; the receipt is shown.
    withdraw = page.locator("#withdraw form")
    withdraw.get_by_label("Password").fill(PASSWORD)
    withdraw.get_by_label("I understand that this cannot be undone").check()
    withdraw.get_by_role("button", name="Withdraw membership").click()
    page.get_by_role("heading", name="Withdrawal receipt").wait_for()
    receipt = page.locator("#withdrawn dl").inner_text()
    assert "Partners told to erase\nParcel Co" in receipt
    page.locator("#withdrawn .receipt").get_by_text("verified", exact=True).wait_for()
    assert page.evaluate("sessionStorage.getItem('consentry.session')") is None
    axe_check(page, label="withdrawal receipt")
    screenshot(page, "account-withdrawn")
    assert problems == []
    ctx.close()


def test_receipts_are_verified_against_the_published_key_only(live: Site, browser: Any) -> None:
    user = _register(live, "verifier")
    given = live.gql('mutation($v: String!) { giveConsent(purpose: "research", policyVersion: $v) '
                     "{ receipt } }", {"v": "1.0"}, token=user["accessToken"])["giveConsent"]["receipt"]
    header, payload, signature = given.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload = base64.urlsafe_b64encode(json.dumps({**claims, "state": "WITHDRAWN"}).encode()
                                              ).rstrip(b"=").decode()
    stranger = Ed25519PrivateKey.generate().sign(f"{header}.{payload}".encode())
    stranger_sig = base64.urlsafe_b64encode(stranger).rstrip(b"=").decode()
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(f"{live.url}/account/")
    page.get_by_role("heading", name="Create an account").wait_for()
    verdicts = page.evaluate(
        """async (jwss) => { const m = await import('/static/account/receipts.js');
           return Promise.all(jwss.map((j) => m.verifyReceipt(j))); }""",
        [given, f"{header}.{forged_payload}.{signature}", f"{header}.{payload}.{stranger_sig}",
         "not a receipt"])
    assert verdicts == [True, False, False, False]
    ctx.close()


def test_pages_carry_the_strict_csp_and_the_api_keeps_its_own(live: Site) -> None:
    for path in ("/account/", "/account/verify-email", "/notices", "/static/common/api.js",
                 "/static/account/app.js", "/static/common/style.css"):
        response = httpx.get(f"{live.url}{path}")
        assert response.status_code == 200, path
        assert response.headers.get_list("content-security-policy") == [PAGE_CSP], path
    missing = httpx.get(f"{live.url}/static/account/nothing.js")
    assert missing.status_code == 404
    assert missing.headers.get_list("content-security-policy") == [
        "default-src 'none'; frame-ancestors 'none'"]  # an error page runs nothing at all
    api = httpx.post(f"{live.url}/graphql", json={"query": "{ policy { version } }"})
    assert api.headers.get_list("content-security-policy") == ["default-src 'none'; frame-ancestors 'none'"]
    assert httpx.get(f"{live.url}/account").headers["location"] == "/account/"


def test_signing_in_keeps_no_token_in_local_storage(live: Site, browser: Any) -> None:
    _register(live, "signin")
    ctx = _context(browser)
    page = ctx.new_page()
    problems = _watch(page)
    page.goto(f"{live.url}/account/")
    form = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    form.get_by_label("User ID").fill("signin")
    form.get_by_label("Password").fill("wrong password entirely")
    form.get_by_role("button", name="Sign in", exact=True).click()
    form.locator(".form-error").wait_for()
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("Signed in as signin").wait_for()
    assert page.evaluate("localStorage.length") == 0
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('consentry.session'))")
    assert stored["role"] == "MEMBER"
    # An access token the API refuses (UNAUTHENTICATED) is renewed with the refresh token.
    page.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('consentry.session'));
        sessionStorage.setItem('consentry.session', JSON.stringify({...s, token: 'refused'})); }""")
    page.reload()
    page.get_by_text("Signed in as signin").wait_for()
    renewed = page.evaluate("JSON.parse(sessionStorage.getItem('consentry.session'))")
    assert renewed["token"] != "refused" and renewed["refreshToken"] != stored["refreshToken"]
    assert page.evaluate("localStorage.length") == 0
    # A new page in the same context (same origin) sees nothing in localStorage either.
    other = ctx.new_page()
    other.goto(f"{live.url}/notices")
    assert other.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.getItem('consentry.session')") is None
    assert problems == []
    ctx.close()


def test_korean_and_a_phone_sized_screen(live: Site, browser: Any) -> None:
    ctx = _context(browser, viewport={"width": 375, "height": 740}, is_mobile=True)
    page = ctx.new_page()
    page.goto(f"{live.url}/account/")
    page.get_by_role("heading", name="Create an account").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_label("Language").select_option("ko")
    page.get_by_role("heading", name="회원가입").wait_for()
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert _signup(page).count() == 0
    axe_check(page, label="sign-up (ko, phone)")
    # Signed in, the whole privacy center still fits the phone, in Korean.
    _register(live, "phoneuser")
    signin = page.locator("form", has=page.get_by_role("heading", name="로그인"))
    signin.get_by_label("아이디").fill("phoneuser")
    signin.get_by_label("비밀번호").fill(PASSWORD)
    signin.get_by_role("button", name="로그인", exact=True).click()
    page.get_by_role("heading", name="내 동의").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    axe_check(page, label="privacy center (ko, phone)")
    ctx.close()


def test_verify_email_link_from_a_real_mail(live: Site, browser: Any) -> None:
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(f"{live.url}/account/")
    form = _signup(page)
    form.get_by_label("User ID").fill("mailme")
    form.get_by_label("Email").fill("mailme@example.org")
    form.get_by_label("Full name").fill("Mail Me")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label(re.compile("^Agree: ")).check()
    form.get_by_role("button", name="Create account").click()
    page.get_by_text("Your email address is not verified yet.").wait_for()
    link = _mailed_link(live, "mailme@example.org", "verify-email")
    page.goto(f"{live.url}{link}")
    page.get_by_text("Your email address is verified.").wait_for()
    # Signed in still: the notice is gone once the page reads the member again.
    page.locator("#consents").wait_for()
    assert page.get_by_text("Your email address is not verified yet.").count() == 0
    ctx.close()


def _mailed_link(live: Site, address: str, action: str) -> str:
    """Send the queued mail (the jobs) and return the path and query of the ``/account/<action>``
    link in the latest mail to ``address`` that has one (the mailer sends over several
    connections at once, so another mail of the same run, an announcement, may arrive after)."""
    live.run_jobs()
    mails = live.smtp.to(address)
    assert mails, f"no mail to {address}"
    texts = [[part.get_payload(decode=True).decode() for part in mail.walk()
              if part.get_content_type() == "text/plain"] for mail in reversed(mails)]
    links = [re.search(rf"/account/{action}\?token=[A-Za-z0-9_\-.~%]+", "\n".join(t))
             for t in texts]
    found = next((link for link in links if link), None)
    assert found, texts
    return found.group(0)


def test_forgotten_password_reset_through_a_real_mail(live: Site, browser: Any) -> None:
    _register(live, "forgetful")
    page_ctx = _context(browser)
    page = page_ctx.new_page()
    page.goto(f"{live.url}{_mailed_link(live, 'forgetful@example.org', 'verify-email')}")
    page.get_by_text("Your email address is verified.").wait_for()
    forgot = page.locator("form", has=page.get_by_role("heading", name="Forgot your password?"))
    forgot.get_by_label("Email").fill("forgetful@example.org")
    forgot.get_by_role("button", name="Send me a reset link").click()
    page.get_by_text("If the address belongs to a verified account, a reset link is on its way.").wait_for()
    page.goto(f"{live.url}{_mailed_link(live, 'forgetful@example.org', 'reset-password')}")
    reset = page.locator("form", has=page.get_by_role("heading", name="Reset your password"))
    axe_check(page, label="reset password")
    reset.get_by_label("New password").fill("a brand new passphrase 77")
    reset.get_by_role("button", name="Set the new password").click()
    page.get_by_text("Your password was changed. Sign in with the new one.").wait_for()
    assert page.url == f"{live.url}/account/"
    signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    signin.get_by_label("User ID").fill("forgetful")
    signin.get_by_label("Password").fill("a brand new passphrase 77")
    signin.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("Signed in as forgetful").wait_for()
    page_ctx.close()


def test_sessions_and_sign_out_everywhere(live: Site, browser: Any) -> None:
    other = _register(live, "everywhere")
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(f"{live.url}/account/")
    signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    signin.get_by_label("User ID").fill("everywhere")
    signin.get_by_label("Password").fill(PASSWORD)
    signin.get_by_role("button", name="Sign in", exact=True).click()
    rows = page.locator("#sessions tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2  # the registration's session and this one
    assert page.locator("#sessions tbody tr", has_text="this device").count() == 1
    axe_check(page, label="sessions")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    refused = httpx.post(f"{live.url}/graphql", json={"query": "{ me { id } }"},
                         headers={"authorization": f"Bearer {other['accessToken']}"}).json()
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["UNAUTHENTICATED"]
    ctx.close()


def test_a_passkey_added_in_the_page_signs_in(live: Site, browser: Any) -> None:
    _register(live, "keyholder")
    ctx = _context(browser)
    page = ctx.new_page()
    # Chromium's virtual authenticator stands in for the member's device (platform, resident
    # keys, user verification), driven through the DevTools protocol.
    cdp = ctx.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    page.goto(f"{live.url}/account/")
    signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    signin.get_by_label("User ID").fill("keyholder")
    signin.get_by_label("Password").fill(PASSWORD)
    signin.get_by_role("button", name="Sign in", exact=True).click()
    keys = page.locator("#passkeys")
    keys.get_by_text("No passkey yet.").wait_for()
    keys.get_by_label("Passkey name").fill("laptop")
    keys.get_by_role("button", name="Add a passkey").click()
    page.get_by_text("Passkey added.").wait_for()
    assert keys.locator("tbody tr td").first.inner_text() == "laptop"
    axe_check(page, label="passkeys")
    page.get_by_role("button", name="Sign out", exact=True).click()
    signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    signin.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_text("Signed in as keyholder").wait_for()
    ctx.close()
