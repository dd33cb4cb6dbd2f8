"""The CLV page (/console/clv) in a real browser: refit with progress, figures equal to the API's, validation
charts, LTV/CAC, the English switch, and a guide's view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.services.context import Context
from tests.support.browser import console_login, launch, require_chromium
from tests.support.live import live_server
from tests.support.stores import open_demo

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def fresh_ctx(tmp_path: Path) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig

    c = open_demo(tmp_path / "data", DemoConfig(customers=1000))
    yield c
    c.close()


def _headers(base: str, username: str, password: str) -> dict[str, str]:
    token = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password}).json()
    return {"Authorization": f"Bearer {token['token']}"}


@pytest.mark.browser
def test_clv_page_refits_and_shows_the_api_figures(fresh_ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=60_000)
    with live_server(create_app(fresh_ctx)) as base, sync_playwright() as pw:
        admin = _headers(base, "admin", "siyu-admin")
        guide = _headers(base, "guide1", "siyu-guide")
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(60_000)
            console_login(page, base, "admin", "siyu-admin")
            page.goto(base + "/console/clv")
            expect(page.get_by_test_id("clv-title")).to_have_text("客户终身价值 CLV")
            expect(page.get_by_test_id("clv-no-fit")).to_be_visible()
            page.get_by_test_id("clv-refit").click()
            expect(page.get_by_test_id("clv-fit-info")).to_contain_text("bgnbd")
            expect(page.get_by_test_id("clv-progress-stage")).to_have_text("完成")

            ov = httpx.get(f"{base}/api/clv/overview", headers=admin, timeout=60).json()
            assert ov["fit"]["created_by"] == "admin"
            expect(page.get_by_test_id("clv-customers-value")).to_have_text(str(ov["totals"]["customers"]))
            expect(page.get_by_test_id("clv-total-value")).to_have_text(f"¥{ov['totals']['clv_total']:,.2f}")
            expect(page.get_by_test_id("clv-mean-value")).to_have_text(f"¥{ov['totals']['clv_mean']:,.2f}")
            expect(page.get_by_test_id("clv-at-risk-value")).to_have_text(str(ov["totals"]["at_risk"]))
            expect(page.get_by_test_id("clv-histogram").locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("clv-heatmap").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "clv-value-zh.png"), full_page=True)

            page.get_by_test_id("clv-tab-cac").click()
            rep = httpx.get(f"{base}/api/clv/ltv-cac", headers=admin, params={"by": "channel"}, timeout=60).json()
            row = next(r for r in rep["rows"] if r["clv_cac"] is not None)
            expect(page.get_by_test_id("clv-cac").locator("canvas").first).to_be_visible()
            page.get_by_test_id("clv-cac-table-tab").click()
            expect(page.get_by_test_id("clv-cac-table")).to_contain_text(str(round(row["clv_cac"], 2)))
            expect(page.get_by_test_id("clv-cac-table")).to_contain_text(row["name"])
            page.screenshot(path=str(ARTIFACTS / "clv-ltv-cac-zh.png"), full_page=True)

            page.get_by_test_id("clv-tab-validation").click()
            page.get_by_test_id("clv-validate").click()
            v = httpx.get(f"{base}/api/clv/validation", headers=admin, timeout=120).json()
            expect(page.get_by_test_id("clv-validation-errors")).to_contain_text(
                f"{v['errors']['holdout_actual']:,.0f}"
            )
            expect(page.get_by_test_id("clv-tracking").locator("canvas").first).to_be_visible()
            page.get_by_test_id("clv-frequency-table-tab").click()
            last = v["by_frequency"][-1]
            expect(page.get_by_test_id("clv-frequency-table")).to_contain_text(str(round(last["actual"], 3)))
            page.screenshot(path=str(ARTIFACTS / "clv-validation-zh.png"), full_page=True)

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("clv-title")).to_have_text("Customer lifetime value (CLV)")
            expect(page.get_by_test_id("clv-customers-value")).to_have_text(str(ov["totals"]["customers"]))
            expect(page.get_by_text("Distribution of predicted CLV")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "clv-value-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("clv-title")).to_have_text("客户终身价值 CLV")

            gpage = browser.new_context().new_page()
            gpage.set_default_timeout(60_000)
            console_login(gpage, base, "guide1", "siyu-guide")
            gpage.goto(base + "/console/clv")
            mine = httpx.get(f"{base}/api/clv/overview", headers=guide, timeout=60).json()
            expect(gpage.get_by_test_id("clv-customers-value")).to_have_text(str(mine["totals"]["customers"]))
            assert mine["totals"]["customers"] < ov["totals"]["customers"]
            expect(gpage.get_by_test_id("clv-refit")).to_have_count(0)
            gpage.screenshot(path=str(ARTIFACTS / "clv-guide-zh.png"), full_page=True)

            # the customer 360 page shows the same prediction as the API
            top = httpx.get(f"{base}/api/clv/predictions", headers=admin, params={"page_size": 1}, timeout=60).json()
            cid = top["items"][0]["customer_id"]
            one = httpx.get(f"{base}/api/clv/customers/{cid}", headers=admin, timeout=60).json()
            page.goto(f"{base}/console/customers/{cid}")
            expect(page.get_by_test_id("clv-clv")).to_have_text(f"¥{one['clv']:,.2f}")
            expect(page.get_by_test_id("clv-p_alive")).to_have_text(f"{one['p_alive']:.1%}")
            page.screenshot(path=str(ARTIFACTS / "clv-customer360-zh.png"), full_page=True)
        finally:
            browser.close()
