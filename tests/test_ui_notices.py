"""The public notices page (/notices) in Chromium, through a real ``consentry serve``: the
policy in force, the next announced version with its date, and the outsourcing partners with
their announced changes, read by anyone without signing in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers_browser import Site, axe_check, chromium, require_browser, screenshot, site

POLICY = ("mutation($v: String!, $t: String!, $e: DateTime!) { announcePolicy(version: $v, "
          "text: $t, effectiveAt: $e) { version } }")
PARTNER = "mutation($i: PartnerInput!) { announcePartner(input: $i) { id effectiveAt } }"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()
    with site(tmp_path_factory.mktemp("ui-notices")) as running:
        admin = running.admin_token()
        running.gql(POLICY, {"v": "2.0", "t": "Version 2.0: research partners are named here.",
                             "e": "2030-01-15T09:00:00+00:00"}, token=admin)
        running.gql(PARTNER, {"i": {
            "name": "Parcel Co", "kind": "LOGISTICS", "purpose": "order_fulfillment",
            "adapter": "recording", "fields": ["FULL_NAME", "ADDRESS"], "optionalFields": ["PHONE"],
            "effectiveAt": "2030-02-01T00:00:00+00:00"}}, token=admin)
        yield running


def test_notices_show_the_policy_the_next_version_and_partner_changes(live: Site,
                                                                     tmp_path: Path) -> None:
    with chromium() as browser:
        ctx = browser.new_context(locale="en-US", timezone_id="UTC")
        page = ctx.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{live.url}/notices")
        page.get_by_role("heading", name="Privacy policy in force: version 1.0").wait_for()
        assert page.get_by_role("heading", name="Next version: 2.0").is_visible()
        assert page.locator("#next .notice").inner_text() == (
            "Takes effect on 1/15/2030, 9:00:00 AM. Until then the version above applies.")
        assert page.locator("#next .policy-text").inner_text() == (
            "Version 2.0: research partners are named here.")
        row = page.locator("#partners tbody tr").first.locator("td").all_inner_texts()
        assert row == ["Parcel Co", "Logistics", "order_fulfillment", "Announced",
                       "Full name, Address", "Phone",
                       "Starts on 2/1/2030, 12:00:00 AM: Full name, Address, Phone"]
        purposes = page.locator("#purposes tbody tr").first.locator("td").all_inner_texts()
        assert purposes[1:] == ["Contract", "yes"]
        axe_check(page, label="notices")
        screenshot(page, "notices")
        page.get_by_label("Language").select_option("ko")
        page.get_by_role("heading", name="시행 중인 개인정보 처리방침: 1.0판").wait_for()
        assert page.locator("#partners tbody tr").first.locator("td").nth(1).inner_text() == "물류"
        axe_check(page, label="notices (ko)")
        assert page.evaluate("localStorage.length") == 0
        assert problems == []
        ctx.close()


def test_notices_fit_a_phone_sized_screen_in_the_browsers_language(live: Site) -> None:
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True,
                                  locale="ko-KR", timezone_id="UTC")
        page = ctx.new_page()
        page.goto(f"{live.url}/notices")
        page.get_by_role("heading", name="개인정보 처리 위탁").wait_for()
        assert page.get_by_label("언어").input_value() == "ko"
        # The wide partner table scrolls inside its own box; the page itself does not.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        axe_check(page, label="notices (phone)")
        ctx.close()
