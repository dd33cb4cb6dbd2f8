"""The customer 360 in a real browser shows personal data masked (as the API does); the reveal button shows it
and writes an audit entry; a guide sees their own customer masked and may reveal it too."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.services import audit
from siyu.services.context import Context
from tests.support.browser import console_login, launch, require_chromium
from tests.support.live import live_server
from tests.test_customers_api import PASSWORD, seed

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.mark.browser
def test_360_is_masked_and_reveal_is_audited(ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    s = seed(ctx)
    ARTIFACTS.mkdir(exist_ok=True)
    with live_server(create_app(ctx)) as base, sync_playwright() as pw:
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {token['token']}"}
        api_view = httpx.get(f"{base}/api/customers/{s.zhang}", headers=h).json()["profile"]
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(20_000)
            console_login(page, base, "admin", PASSWORD)
            expect(page.locator(".ag-cell", has_text="138****8000")).to_be_visible()  # the list is masked too
            expect(page.locator(".ag-cell", has_text="张三")).to_have_count(0)
            page.goto(base + f"/console/customers/{s.zhang}")
            expect(page.get_by_test_id("profile-phone")).to_have_text(api_view["phone"])  # same as the API
            expect(page.get_by_test_id("profile-phone")).to_have_text("138****8000")
            expect(page.get_by_test_id("profile-name")).to_have_text("张*")
            expect(page.get_by_test_id("c360-title")).to_contain_text("张*")
            expect(page.get_by_test_id("identities")).to_contain_text("138****8000")
            assert "13800138000" not in page.content() and "张三" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "pii-360-masked-zh.png"), full_page=True)

            assert httpx.get(f"{base}/api/audit", params={"action": "pii.reveal"}, headers=h).json()["count"] == 0
            page.get_by_test_id("reveal").click()
            expect(page.get_by_test_id("profile-phone")).to_have_text("+8613800138000")
            expect(page.get_by_test_id("profile-name")).to_have_text("张三")
            expect(page.get_by_test_id("identities")).to_contain_text("wm_zhang")
            expect(page.get_by_test_id("reveal")).to_be_hidden()
            [entry] = httpx.get(f"{base}/api/audit", params={"action": "pii.reveal"}, headers=h).json()["items"]
            assert entry["actor"] == "admin" and entry["target"] == s.zhang and "phone" in entry["detail"]["fields"]
            page.screenshot(path=str(ARTIFACTS / "pii-360-revealed-zh.png"), full_page=True)

            page.reload()  # a reveal lasts for that view only
            expect(page.get_by_test_id("profile-phone")).to_have_text("138****8000")
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("reveal")).to_have_text(re.compile("Reveal personal data", re.I))
            expect(page.get_by_test_id("pii-note")).to_have_text("Phones, emails, names and WeCom ids are masked")
            page.screenshot(path=str(ARTIFACTS / "pii-360-masked-en.png"), full_page=True)

            page.context.clear_cookies()  # the customer's own guide: masked, with a reveal of their own
            console_login(page, base, "guide1", PASSWORD)
            page.goto(base + f"/console/customers/{s.zhang}")
            expect(page.get_by_test_id("profile-phone")).to_have_text("138****8000")
            page.get_by_test_id("reveal").click()
            expect(page.get_by_test_id("profile-phone")).to_have_text("+8613800138000")
        finally:
            browser.close()
    actors = [e["actor"] for e in audit.entries(ctx, "acme", "pii.reveal")]  # the guide's reveal is theirs
    assert actors == ["guide1", "admin"]
