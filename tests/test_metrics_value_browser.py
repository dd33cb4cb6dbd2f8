"""The customer value page (/console/metrics/value) in a real browser, on the demo brand."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.services.context import Context
from tests.support.browser import console_login, launch, require_chromium
from tests.support.live import live_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.mark.browser
def test_value_page_shows_the_api_figures(demo_ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=30_000)  # the page computes its figures on load; shared CPUs are slow
    with live_server(create_app(demo_ctx)) as base, sync_playwright() as pw:
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"}).json()
        h = {"Authorization": f"Bearer {token['token']}"}
        rfm = httpx.get(f"{base}/api/metrics/rfm", headers=h, timeout=60).json()
        aipl = httpx.get(f"{base}/api/metrics/aipl", headers=h, timeout=60).json()
        life = httpx.get(f"{base}/api/metrics/lifecycle", headers=h, timeout=60).json()
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(30_000)
            console_login(page, base, "admin", "siyu-admin")
            page.goto(base + "/console/metrics/value")
            expect(page.get_by_test_id("value-title")).to_have_text("客户价值")
            expect(page.get_by_test_id("value-customers-value")).to_have_text(str(rfm["customers"]))
            expect(page.get_by_test_id("value-monetary-value")).to_have_text(f"¥{rfm['monetary']:,.2f}")
            expect(page.get_by_test_id("value-mean-m-value")).to_have_text(f"¥{rfm['means']['m']:,.2f}")
            expect(page.get_by_test_id("value-mean-f-value")).to_have_text(f"{rfm['means']['f']:,.2f}")
            iv = next(c for c in rfm["classes"] if c["rfm_class"] == "important_value")
            expect(page.get_by_test_id("rfm-drill-total")).to_have_text(f"重要价值客户: {iv['customers']}")
            page.get_by_test_id("rfm-classes-table-tab").click()
            expect(page.get_by_test_id("rfm-classes-table")).to_contain_text("重要价值客户")
            page.screenshot(path=str(ARTIFACTS / "metrics-value-rfm-zh.png"), full_page=True)

            page.get_by_test_id("tab-aipl").click()
            page.get_by_test_id("aipl-counts-table-tab").click()
            loyal = next(s for s in aipl["stages"] if s["stage"] == "L")["customers"]
            expect(page.get_by_test_id("aipl-counts-table")).to_contain_text(str(loyal))
            expect(page.get_by_test_id("aipl-flow").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "metrics-value-aipl-zh.png"), full_page=True)

            page.get_by_test_id("tab-lifecycle").click()
            page.get_by_test_id("lifecycle-counts-table-tab").click()
            rep = next(s for s in life["stages"] if s["stage"] == "old_repurchased")["customers"]
            expect(page.get_by_test_id("lifecycle-counts-table")).to_contain_text("老客复购")
            expect(page.get_by_test_id("lifecycle-counts-table")).to_contain_text(str(rep))

            page.get_by_test_id("tab-cohorts").click()
            expect(page.get_by_test_id("cohort-retention").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "metrics-value-cohorts-zh.png"), full_page=True)

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("value-title")).to_have_text("Customer value")
            expect(page.get_by_test_id("value-customers-value")).to_have_text(str(rfm["customers"]))
            expect(page.get_by_text("Important value").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "metrics-value-rfm-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("value-title")).to_have_text("客户价值")
        finally:
            browser.close()
