"""The overview dashboard (/console/metrics) and the guides & channels page (/console/metrics/guides) in a real
browser on the demo brand: figures against the API, a guide's drill-down, language switch, screenshots."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.console.metrics_overview_page import FUNNEL
from siyu.services.context import Context
from tests.support.browser import chart_texts, console_login, launch, require_chromium
from tests.support.live import live_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
END = date(2026, 10, 31)  # the demo's last data day


def _login(page: Any, base: str, username: str, password: str) -> None:

    console_login(page, base, username, password)


def _api(base: str, username: str, password: str, path: str, **params: Any) -> Any:
    token = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password}).json()["token"]
    r = httpx.get(f"{base}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.browser
def test_overview_and_guides_pages(demo_ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=60_000)  # the pages compute their figures on load; shared CPUs are slow
    with live_server(create_app(demo_ctx)) as base, sync_playwright() as pw:
        cac = _api(base, "admin", "siyu-admin", "/api/metrics/cac", start=str(END - timedelta(days=89)), end=str(END))
        found = _api(base, "admin", "siyu-admin", "/api/metrics/anomalies")
        board = _api(base, "admin", "siyu-admin", "/api/metrics/guides")
        month = {"start": str(END - timedelta(days=29)), "end": str(END)}  # the overview's funnel period
        funnel = _api(base, "admin", "siyu-admin", "/api/metrics/funnel", **month)["rows"][0]
        mine = _api(base, "guide1", "siyu-guide", "/api/metrics/guides/g01/customers")
        g02 = _api(base, "admin", "siyu-admin", "/api/metrics/guides/g02/customers")
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            _login(page, base, "admin", "siyu-admin")
            page.goto(base + "/console/metrics")
            expect(page.get_by_test_id("overview-as-of")).to_have_text(f"数据截至 {END.isoformat()}")
            expect(page.get_by_test_id("kpi-cac-value")).to_have_text(f"¥{cac['total']['cac']:,.2f}")
            expect(page.get_by_test_id("kpi-roi-value")).to_have_text(f"{cac['total']['roi']:,.2f}")
            expect(page.get_by_test_id("overview-anomalies")).to_contain_text(f"异常预警（{found['day']}）")
            if found["anomalies"]:
                rows = page.get_by_test_id("overview-anomaly-table").locator("tbody tr")
                expect(rows).to_have_count(len(found["anomalies"]))
            expect(page.get_by_test_id("overview-band").locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("overview-assets")).to_contain_text("用户资产表")
            expect(page.get_by_test_id("overview-funnel")).to_contain_text("企微漏斗")
            # every funnel label drawn whole inside the chart (outside labels were cut: 3,372 invitations read "33")
            drawn = chart_texts(page, "overview-funnel")
            assert [t[0].split()[-1] for t in drawn] == [str(funnel[k]) for k in FUNNEL], drawn
            assert all(left >= 0 and right <= width for _, left, right, width in drawn), drawn
            page.screenshot(path=str(ARTIFACTS / "metrics-overview-zh.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("kpi-reachable")).to_contain_text("Reachable customers")
            expect(page.get_by_test_id("kpi-cac-value")).to_have_text(f"¥{cac['total']['cac']:,.2f}")
            page.screenshot(path=str(ARTIFACTS / "metrics-overview-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()

            page.goto(base + "/console/metrics/guides")
            expect(page.get_by_test_id("guides-board")).to_contain_text("导购排行榜")
            page.get_by_test_id("guides-board-table-tab").click()
            top = board["rows"][0]
            first = page.get_by_test_id("guides-board-table").locator("tbody tr").first
            expect(first).to_contain_text(top["guide_id"])
            expect(first).to_contain_text(f"¥{top['gmv']:,.2f}")  # money as siyu.display shows it
            tasks = page.get_by_test_id("guides-tasks")  # journey task completion per guide (none on the demo)
            expect(tasks).to_contain_text("导购任务完成情况")
            expect(tasks.locator("canvas").first).to_be_visible()
            cac30 = _api(base, "admin", "siyu-admin", "/api/metrics/cac", start=board["period"]["start"], end=str(END))
            parcel = next(r for r in cac30["rows"] if r["channel_id"] == "ch_parcel")
            page.get_by_test_id("guides-cac-table-tab").click()
            expect(page.get_by_test_id("guides-cac-table")).to_contain_text(str(round(parcel["cac"], 2)))
            page.get_by_test_id("guides-drill-guide").click()
            page.get_by_role("option", name="李娜 (g02)").click()
            expect(page.get_by_test_id("guides-drill-title")).to_contain_text(f"（{len(g02['rows'])} 位）")
            page.screenshot(path=str(ARTIFACTS / "metrics-guides-zh.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("guides-board")).to_contain_text("Guide leaderboard")
            page.screenshot(path=str(ARTIFACTS / "metrics-guides-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            page.get_by_test_id("guides-scorecard-link").click()  # the guides' scorecard is one click away
            expect(page).to_have_url(base + "/console/guides/scorecard")

            # a guide: the drill-down opens on their own customers, phones masked
            guide_page = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
            guide_page.set_default_timeout(60_000)
            _login(guide_page, base, "guide1", "siyu-guide")
            guide_page.goto(base + "/console/metrics/guides")
            title = guide_page.get_by_test_id("guides-drill-title")
            expect(title).to_contain_text(f"（{len(mine['rows'])} 位）")
            expect(guide_page.get_by_test_id("guides-drill-table")).to_contain_text("****")
            expect(guide_page.get_by_test_id("guides-cac-by")).to_have_count(0)
            guide_page.screenshot(path=str(ARTIFACTS / "metrics-guides-guide1.png"), full_page=True)
        finally:
            browser.close()
