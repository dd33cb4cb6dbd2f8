"""The operations page (/console/metrics/operations) in a real browser, on the demo brand."""

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
def test_operations_page_shows_the_api_figures(demo_ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=30_000)  # figures are computed on load; shared CPUs are slow
    with live_server(create_app(demo_ctx)) as base, sync_playwright() as pw:
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"}).json()
        h = {"Authorization": f"Bearer {token['token']}"}
        st = httpx.get(f"{base}/api/metrics/asset-statement", headers=h, timeout=60).json()
        reach = httpx.get(f"{base}/api/metrics/reachable", headers=h, timeout=60).json()
        fun = httpx.get(f"{base}/api/metrics/funnel", headers=h, timeout=60).json()
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(30_000)
            console_login(page, base, "admin", "siyu-admin")
            page.goto(base + "/console/metrics/operations")
            expect(page.get_by_test_id("ops-title")).to_have_text("私域资产与运营")
            expect(page.get_by_test_id("ops-closing-value")).to_have_text(str(st["totals"]["closing"]))
            expect(page.get_by_test_id("ops-opening-value")).to_have_text(str(st["totals"]["opening"]))
            expect(page.get_by_test_id("ops-statement").locator("canvas").first).to_be_visible()
            page.get_by_test_id("ops-statement-table-tab").click()
            expect(page.get_by_test_id("ops-statement-table")).to_contain_text("删粉（客户删除）")
            page.screenshot(path=str(ARTIFACTS / "metrics-operations-assets-zh.png"), full_page=True)

            page.get_by_test_id("ops-tab-reachable").click()
            expect(page.get_by_test_id("ops-reachable-brand-value")).to_have_text(str(reach["brand"]))
            page.get_by_test_id("ops-reachable-guides-table-tab").click()
            g01 = next(g for g in reach["guides"] if g["guide_id"] == "g01")
            expect(page.get_by_test_id("ops-reachable-guides-table")).to_contain_text(str(g01["reachable"]))

            page.get_by_test_id("ops-tab-performance").click()
            expect(page.get_by_test_id("ops-lmdi").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "metrics-operations-performance-zh.png"), full_page=True)

            page.get_by_test_id("ops-tab-funnel").click()
            lead = fun["rows"][0]["lead_in_rate"] * 100
            expect(page.get_by_test_id("ops-lead-in-rate-value")).to_have_text(f"{lead:.1f}%")
            expect(page.get_by_test_id("ops-funnel").locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("ops-add-rate").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "metrics-operations-funnel-zh.png"), full_page=True)

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("ops-title")).to_have_text("Private-domain assets & operations")
            expect(page.get_by_test_id("ops-closing-value")).to_have_text(str(st["totals"]["closing"]))
            expect(page.get_by_text("Lost (customer deleted)").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "metrics-operations-assets-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("ops-title")).to_have_text("私域资产与运营")
        finally:
            browser.close()
