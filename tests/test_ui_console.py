"""The admin console (/console/): the two admin queries it needs beyond the contract, then the
console itself in Chromium through a real ``consentry serve``: sign in with password and TOTP,
announce a partner, issue credentials (the secret shown once), axe-core on every screen."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.conftest import error_code, register_member
from tests.helpers_browser import axe_check, chromium, require_browser, screenshot
from tests.helpers_serve import CONSENTRY, serve

LOOKUP = """query($u: String, $e: String) {
  memberLookup(userId: $u, email: $e) { id userId email fullName } }"""
AUDIT = "{ auditTrail(first: 100) { edges { node { action subject actor } } } }"


async def test_member_lookup_by_exact_user_id_or_email_is_audited(gql, admin, member):
    by_id = await gql(LOOKUP, {"u": "alice"}, token=admin.token)
    assert by_id["data"]["memberLookup"]["email"] == "alice@example.org", by_id
    by_mail = await gql(LOOKUP, {"e": "ALICE@example.org"}, token=admin.token)
    assert by_mail["data"]["memberLookup"]["userId"] == "alice", by_mail
    assert (await gql(LOOKUP, {"u": "ali"}, token=admin.token))["data"]["memberLookup"] is None
    trail = await gql(AUDIT, token=admin.token)
    entries = [e["node"] for e in trail["data"]["auditTrail"]["edges"]]
    reads = [e for e in entries if e["action"] == "admin.read_member"]
    assert [e["subject"] for e in reads] == [member.id, member.id]
    misses = [e for e in entries if e["action"] == "admin.lookup_member"]
    assert len(misses) == 1 and misses[0]["subject"] is None
    assert "ali" not in str(misses)  # the value looked up is not in the trail


async def test_member_lookup_by_user_id_ignores_case_like_sign_in(gql, admin, member):
    body = await gql(LOOKUP, {"u": "ALICE"}, token=admin.token)
    assert body["data"]["memberLookup"]["id"] == member.id, body


@pytest.mark.parametrize("variables", [{}, {"u": "alice", "e": "alice@example.org"}])
async def test_member_lookup_needs_exactly_one_key(gql, admin, member, variables):
    body = await gql(LOOKUP, variables, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "userId"


async def test_member_lookup_is_for_admins_only(gql, member):
    other = await register_member(gql, "bob")
    body = await gql(LOOKUP, {"u": "alice"}, token=other.token)
    assert error_code(body) == "FORBIDDEN"


async def test_partner_adapters_lists_usable_adapters_with_their_fields(gql, admin):
    body = await gql("{ partnerAdapters { name accepts } }", token=admin.token)
    adapters = {a["name"]: a["accepts"] for a in body["data"]["partnerAdapters"]}
    everything = ["USER_ID", "EMAIL", "FULL_NAME", "DATE_OF_BIRTH", "PHONE", "ADDRESS"]
    assert adapters["jsonl"] == everything
    assert adapters["webhook"] == everything


# --- the console in Chromium, through a real server -------------------------------------------

PASSWORD = "correct horse battery staple 42"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATA_DIR"] = str(tmp_path / "data")
    return env


def _create_admin(env: dict[str, str], user_id: str) -> pyotp.TOTP:
    done = subprocess.run([CONSENTRY, "admin", "create", "--user-id", user_id, "--email",
                           f"{user_id}@clinic.example"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return pyotp.TOTP(pyotp.parse_uri(done.stdout.strip().splitlines()[-1]).secret)


def _member_with_a_request(url: str) -> str:
    """Mira registers and reports her email as inaccurate: one open CORRECTION request."""
    import httpx

    def gql(query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        body = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables},
                          headers=headers).json()
        assert "errors" not in body, body
        return body["data"]

    reg = gql("mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
              {"i": {"userId": "mira", "email": "mira@example.org", "fullName": "Mira Example",
                     "password": PASSWORD}})
    made = gql("mutation { reportInaccuracy(fields: [EMAIL]) { dueAt } }", {},
               reg["register"]["accessToken"])
    return str(made["reportInaccuracy"]["dueAt"])


def _sign_in(page: Any, url: str, user_id: str, totp: pyotp.TOTP) -> None:
    page.goto(f"{url}/console/")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill(totp.now())
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Partners", level=2).wait_for()
    page.locator(".section-body").wait_for()


def test_console_sign_in_announce_partner_and_issue_credentials(tmp_path):
    require_browser()
    env = _env(tmp_path)
    (tmp_path / "data").mkdir()
    totp = _create_admin(env, "head-nurse")
    errors: list[str] = []
    with serve(env, tmp_path / "serve.log") as (url, _proc), chromium() as browser:
        due_at = _member_with_a_request(url)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="en-GB")

        def nav(name: str) -> None:
            page.get_by_role("link", name=name).click()
            page.get_by_role("heading", name=name, level=2).wait_for()
            page.locator(".section-body").wait_for()

        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(f"{url}/console/")
        page.get_by_role("heading", name="Staff sign-in").wait_for()
        axe_check(page, label="console sign-in")

        # A wrong code is refused next to the form, and nothing else opens.
        page.get_by_label("User ID").fill("head-nurse")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("One-time code").fill("000000" if totp.now() != "000000" else "111111")
        page.get_by_role("button", name="Sign in").click()
        page.locator("#signin-form [role=alert]:not([hidden]), #signin-form .field-error").first.wait_for()
        assert page.locator("#console").is_hidden()

        _sign_in(page, url, "head-nurse", totp)
        assert page.get_by_text("No partners yet.").is_visible()
        # Screens of capabilities not served yet stay out of the way, and appear once served.
        import httpx
        def served(name: str, selection: str = "") -> bool:
            return "errors" not in httpx.post(f"{url}/graphql", json={
                "query": f"{{ {name} @skip(if: true) {selection} }}"}).json()

        record_served = served("processingRecord")
        duties_served = served("deletionDuties", "{ eventId }")
        assert page.get_by_role("link", name="Processing record").count() == int(record_served)
        assert page.get_by_role("link", name="Deletion duties").count() == int(duties_served)

        # Announce: adapters come from the API, the secret setting is masked, the date has a floor.
        form = page.locator("#announce-form")
        form.get_by_label("Partner name").fill("ShipFast Logistics")
        form.get_by_label("Kind").select_option("LOGISTICS")
        form.get_by_label("Purpose").select_option("order_fulfillment")
        offered = form.get_by_label("Adapter").locator("option").all_inner_texts()
        assert {"jsonl", "webhook"} <= set(offered), offered
        form.get_by_label("Adapter").select_option("webhook")
        assert form.get_by_label("Signing secret").get_attribute("type") == "password"
        assert form.get_by_text("This adapter accepts: User ID, Email, Full name, Date of birth, "
                                "Phone, Address.").is_visible()
        date_input = form.get_by_label("Takes effect on (empty: 30 days from now)")
        earliest = date_input.get_attribute("min")
        assert earliest and form.get_by_text(f"the earliest date is {earliest}").is_visible()
        form.get_by_label("Adapter").select_option("jsonl")
        form.get_by_label("Directory").fill(str(tmp_path / "out"))
        form.get_by_role("group", name="Fields (minimum the service needs)").get_by_label(
            "Full name").check()
        form.get_by_role("group", name="Fields (minimum the service needs)").get_by_label(
            "Address").check()
        form.get_by_role("group", name="Optional fields (only with the member's consent)"
                         ).get_by_label("Phone").check()
        # A date inside the notice period (typed past the picker's min) is refused by the API,
        # and the refusal appears next to the date.
        date_input.fill("2026-12-02")
        form.get_by_role("button", name="Announce partner").click()
        refusal = form.locator(".field-error")
        refusal.wait_for()
        assert "no sooner than 30 days" in refusal.inner_text()
        assert date_input.get_attribute("aria-invalid") == "true"
        date_input.fill(earliest)
        screenshot(page, "console-announce-form")
        axe_check(page, label="console partners with the announce form")
        form.get_by_role("button", name="Announce partner").click()
        page.get_by_text("ShipFast Logistics announced; takes effect").wait_for()

        card = page.locator("article.partner", has_text="ShipFast Logistics")
        assert card.get_by_text("Announced", exact=True).is_visible()
        assert card.locator(".timeline li").first.inner_text().startswith("Added")
        assert "Full name, Address" in card.locator(".facts").inner_text()

        # Credentials: the secret appears once, in this view only.
        card.get_by_text("Credentials", exact=True).click()
        card.get_by_role("button", name="Issue credentials").click()
        secret = card.locator(".client-secret")
        secret.wait_for()
        client_secret = secret.inner_text()
        client_id = card.locator(".client-id").inner_text()
        assert len(client_secret) >= 32 and client_id
        assert card.get_by_text("it is shown only this once").is_visible()
        screenshot(page, "console-partners")
        axe_check(page, label="console partners with issued credentials")
        page.reload()
        page.get_by_role("heading", name="Partners", level=2).wait_for()
        page.locator("article.partner").first.wait_for()
        assert client_secret not in page.content()

        # The partner can use the credentials; revoking them ends that.
        token = httpx.post(f"{url}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": client_secret})
        assert token.status_code == 200, token.text
        card = page.locator("article.partner", has_text="ShipFast Logistics")
        card.get_by_text("Credentials", exact=True).click()
        card.get_by_label("Client ID").fill(client_id)
        card.get_by_role("button", name="Revoke").click()
        card.get_by_text("Credentials revoked").wait_for()
        refused = httpx.post(f"{url}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": client_secret})
        assert refused.status_code == 401, refused.text

        # Narrowing takes effect at once and shows in the partner's fields.
        card.get_by_text("Widen or narrow fields").click()
        card.get_by_role("group", name="Fields", exact=True).get_by_label("Address").uncheck()
        card.get_by_role("button", name="Save fields").click()
        page.get_by_text("Fields of ShipFast Logistics changed.").wait_for()
        card = page.locator("article.partner", has_text="ShipFast Logistics")
        assert "Full name" in card.locator(".facts").inner_text()
        assert "Address" not in card.locator(".facts").inner_text()

        # Partner audits (policy 6.2), once served: recorded here, listed on the partner.
        if served("partners", "{ audits { id } suspended nextAuditDueAt }"):
            card.get_by_text("Record an audit").click()
            card.get_by_label("Outcome").select_option("FINDINGS")
            card.get_by_label("Notes").fill("Access reviews overdue at the vendor.")
            card.get_by_label("Next audit due").fill("2027-06-01")
            card.get_by_role("button", name="Record audit").click()
            page.get_by_text("Audit of ShipFast Logistics recorded.").wait_for()
            card = page.locator("article.partner", has_text="ShipFast Logistics")
            assert card.locator(".partner-audits li").first.inner_text().startswith("Findings")
            axe_check(page, label="console partner with an audit")
            screenshot(page, "console-partner-audit")

        # Data requests: the member's correction request, with its due date, resolved here.
        nav("Data requests")
        request = page.locator("li.request", has_text="Correction")
        assert due_at[:4] in request.locator(".facts dd").first.inner_text()  # "Due", local time
        assert "Email" in request.locator(".facts").inner_text()
        axe_check(page, label="console data requests")
        request.get_by_text("Resolve", exact=True).click()
        request.get_by_label("Outcome").select_option("REJECTED")
        request.get_by_label("Note").fill("The address on file is correct.")
        request.get_by_role("button", name="Resolve request").click()
        page.get_by_text("Request resolved.").wait_for()
        assert page.get_by_text("No data requests.").is_visible()  # none open any more

        # Member lookup by exact email: the member's record; the read lands in the audit trail.
        nav("Member lookup")
        page.get_by_label("Email", exact=True).check()
        page.get_by_label("User ID or email").fill("mira@example.org")
        page.get_by_role("button", name="Look up").click()
        page.get_by_role("heading", name="Mira Example").wait_for()
        assert page.get_by_role("cell", name="Correction", exact=True).is_visible()
        assert page.get_by_role("cell", name="Rejected", exact=True).is_visible()
        axe_check(page, label="console member lookup")
        page.get_by_label("User ID or email").fill("nobody-here@example.org")
        page.get_by_role("button", name="Look up").click()
        page.get_by_text("No member with that user ID or email.").wait_for()

        if duties_served:
            nav("Deletion duties")
            assert page.get_by_text("No deletion duties.").is_visible()
            axe_check(page, label="console deletion duties")
        if record_served:
            nav("Processing record")
            assert page.get_by_role("button", name="Download as JSON").is_visible()
            axe_check(page, label="console processing record")

        nav("Delivery")
        assert page.get_by_text("No dead letters.").is_visible()
        axe_check(page, label="console delivery")

        nav("Audit trail")  # no API operation verifies the chain: the CLI command is named
        assert page.get_by_text("consentry audit verify", exact=True).is_visible()
        assert page.get_by_role("cell", name="admin.read_member", exact=True).first.is_visible()
        axe_check(page, label="console audit trail")

        nav("Policy")
        assert page.get_by_text("In force", exact=True).is_visible()
        axe_check(page, label="console policy")
        screenshot(page, "console-policy")

        # Korean, on a phone-sized screen.
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_label("Language").select_option("ko")
        page.get_by_role("link", name="수탁사").click()
        page.get_by_role("heading", name="수탁사", level=2).wait_for()
        page.locator(".section-body").wait_for()
        axe_check(page, label="console partners, Korean, phone")
        screenshot(page, "console-partners-ko-phone")

        # A member's password opens nothing here.
        page.get_by_role("button", name="로그아웃").click()
        page.get_by_label("언어").select_option("en")
        page.get_by_label("User ID").fill("mira")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("One-time code").fill("123456")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("This account is not an administrator.").wait_for()
        assert page.locator("#console").is_hidden()
    assert errors == [], errors


def test_console_signs_in_where_only_trusted_documents_are_accepted(tmp_path):
    """Sign-in is anonymous, so it goes as a registered document by hash; once signed in the
    admin's own queries are ad hoc (admins keep those)."""
    require_browser()
    env = _env(tmp_path)
    env["CONSENTRY_TRUSTED_DOCUMENTS_ONLY"] = "true"
    (tmp_path / "data").mkdir()
    totp = _create_admin(env, "head-nurse")
    with serve(env, tmp_path / "serve.log") as (url, _proc), chromium() as browser:
        page = browser.new_page(locale="en-GB")
        _sign_in(page, url, "head-nurse", totp)
        assert page.get_by_text("No partners yet.").is_visible()
