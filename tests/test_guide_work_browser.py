"""The guide workspace pages in a real browser on a freshly seeded demo brand, with WeCom at the local server:
/followups (record one, its reminder on /tasks), /pool (fill and assign), /moments (publish, completion after a
guide posts), /guides/scorecard (set a target) and /guides/me — each figure checked against the API, both languages,
screenshots in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.display import display_value
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from siyu.stores.state.models import utcnow
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server
from tests.test_wecom_ops_env import CORP, KEY, TOKEN
from tests.wecom_server import WeComServer, actions, running

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Context, WeComServer]]:
    require_chromium()
    from siyu.services.demo import DemoConfig, seed_demo

    ctx = Context.open(Settings(data_dir=Path(tmp_path_factory.mktemp("gwbrowser")) / "data"))
    seed_demo(ctx, DemoConfig(customers=300))
    srv = WeComServer(corpid=CORP)
    for (u,) in ctx.warehouse.fetch("SELECT wecom_userid FROM guides WHERE brand_id = 'demo' ORDER BY 1"):
        srv.company.members[str(u)] = str(u)
    with running(srv) as wecom, live_server(create_app(ctx)) as base:
        set_config(ctx, "demo", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=wecom))
        ARTIFACTS.mkdir(exist_ok=True)
        yield base, ctx, srv
    ctx.close()


def _h(base: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": password})
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _get(base: str, path: str, h: dict[str, str]) -> Any:
    r = httpx.get(base + path, headers=h, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _page(pw: Any, base: str, user: str, password: str) -> tuple[Any, Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    browser = launch(pw)
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_timeout(30_000)
    console_login(page, base, user, password)
    return browser, page


def _switch(page: Any, testid: str, zh: str, en: str, shot: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id(testid)).to_have_text(zh)
    page.screenshot(path=str(ARTIFACTS / f"{shot}-zh.png"), full_page=True)
    page.get_by_test_id("lang-switch").click()
    expect(page.get_by_test_id(testid)).to_have_text(en)
    page.screenshot(path=str(ARTIFACTS / f"{shot}-en.png"), full_page=True)
    page.get_by_test_id("lang-switch").click()
    expect(page.get_by_test_id(testid)).to_have_text(zh)


def test_followups_page_and_inbox(env: tuple[str, Context, WeComServer]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, ctx, _ = env
    mine = ctx.warehouse.fetch(
        "SELECT i.customer_id FROM relations r JOIN identities i ON i.brand_id = r.brand_id AND i.id_type = "
        "'external_userid' AND i.id_value = r.external_userid WHERE r.brand_id = 'demo' AND r.guide_id = 'g01' "
        "AND r.state = 'active' ORDER BY 1 LIMIT 1"
    )[0][0]
    h = _h(base, "guide1", "siyu-guide")
    with sync_playwright() as pw:
        browser, page = _page(pw, base, "guide1", "siyu-guide")
        try:
            page.goto(base + "/console/followups")
            field(page, "fu-customer").fill(mine)
            field(page, "fu-next").fill((utcnow() + timedelta(days=2)).date().isoformat())
            page.locator("[data-testid=fu-content]").locator("xpath=descendant-or-self::textarea").first.fill("到店")
            page.get_by_test_id("fu-submit").click()
            api = _get(base, "/api/followups", h)
            expect(page.get_by_test_id("fu-total-value")).to_have_text("1")
            assert api["total"] == 1 and api["items"][0]["content"] == "到店"
            expect(page.get_by_test_id("fu-list")).to_contain_text(mine)
            expect(page.get_by_test_id("fu-stages").locator("canvas").first).to_be_visible()
            _switch(page, "fu-title", "跟进记录", "Follow-ups", "guide-followups")
            # the reminder sits in the guide's inbox on /tasks
            page.goto(base + "/console/tasks")
            fid = api["items"][0]["id"]
            expect(page.get_by_test_id(f"inbox-followup-{fid}")).to_contain_text("到店")
            expect(page.get_by_test_id("inbox-count-followup")).to_contain_text("1")
            page.screenshot(path=str(ARTIFACTS / "guide-tasks-inbox-zh.png"), full_page=True)
        finally:
            browser.close()


def test_pool_page_fill_and_assign(env: tuple[str, Context, WeComServer]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _, _ = env
    h = _h(base, "operator", "siyu-operator")
    with sync_playwright() as pw:
        browser, page = _page(pw, base, "operator", "siyu-operator")
        try:
            page.goto(base + "/console/pool")
            expect(page.get_by_test_id("pool-in-value")).to_have_text("0")
            page.get_by_test_id("pool-add-unowned").click()
            total = _get(base, "/api/pool?status=pool", h)["total"]
            assert total > 0
            expect(page.get_by_test_id("pool-in-value")).to_have_text(str(total))
            page.get_by_test_id("pool-assign").click()
            expect(page.get_by_test_id("pool-in-value")).to_have_text("0")
            owned = _get(base, "/api/pool?status=owned", h)
            assert owned["total"] == total
            expect(page.get_by_test_id("pool-owned-value")).to_have_text(str(total))
            expect(page.get_by_test_id("pool-moves")).to_contain_text("分配")
            expect(page.get_by_test_id("pool-loads").locator("canvas").first).to_be_visible()
            _switch(page, "pool-title", "客户公海", "Customer pool", "guide-pool")
        finally:
            browser.close()


def test_moments_page_publish_and_completion(env: tuple[str, Context, WeComServer]) -> None:
    from playwright.sync_api import expect, sync_playwright

    from siyu.services.guide_work import moments
    from siyu.services.wecom.config import client_for, get_config

    base, ctx, srv = env
    h = _h(base, "operator", "siyu-operator")
    with sync_playwright() as pw:
        browser, page = _page(pw, base, "operator", "siyu-operator")
        try:
            # the brand's next posting-window start as the service gives it now (inside a window: now itself)
            around = {moments.suggested_times(ctx, "demo")[0]}
            page.goto(base + "/console/moments")
            around.add(moments.suggested_times(ctx, "demo")[0])
            shown = "|".join(re.escape(t.replace("T", " ")[:16]) for t in sorted(around))
            expect(page.get_by_test_id("mo-suggested")).to_contain_text(re.compile(f"建议发布时间：({shown})"))
            field(page, "mo-title").fill("周末上新")
            page.locator("[data-testid=mo-content]").locator("xpath=descendant-or-self::textarea").first.fill("新品")
            field(page, "mo-link").fill("https://example.cn/new")
            page.get_by_test_id("mo-publish").click()
            expect(page.get_by_test_id("mo-count-value")).to_have_text("1")
            task = _get(base, "/api/moments", h)["items"][0]
            assert task["status"] == "created" and task["targets"] == len(srv.company.members)
            expect(page.get_by_test_id("mo-done-value")).to_have_text(f"0/{task['targets']}")
            # one guide posts in WeCom; the poll records it; the page shows it after a reload
            actions.publish_moment(srv, task["moment_id"], task["guides"][0]["userid"])
            client = client_for(get_config(ctx, "demo"))
            moments.poll_brand(ctx, "demo", client)
            client.close()
            assert _get(base, f"/api/moments/{task['id']}", h)["done"] == 1
            page.reload()
            expect(page.get_by_test_id("mo-done-value")).to_have_text(f"1/{task['targets']}")
            expect(page.get_by_test_id("mo-tasks")).to_contain_text("周末上新")
            _switch(page, "mo-title-label", "朋友圈任务", "Moments tasks", "guide-moments")
        finally:
            browser.close()


def test_scorecard_and_me_pages(env: tuple[str, Context, WeComServer]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _, _ = env
    op = _h(base, "operator", "siyu-operator")
    with sync_playwright() as pw:
        browser, page = _page(pw, base, "operator", "siyu-operator")
        try:
            page.goto(base + "/console/guides/scorecard")
            card = _get(base, "/api/guides/scorecard", op)
            first = card["rows"][0]
            expect(page.get_by_test_id("sc-table")).to_contain_text(str(first["name"]))
            expect(page.get_by_test_id("sc-table")).to_contain_text("响应数据来源")  # events or WeCom's statistics
            sources = {r["reply_source"] for r in card["rows"]} - {None}
            for src in sources:
                expect(page.get_by_test_id("sc-table")).to_contain_text(
                    {"events": "消息事件", "wecom": "企业微信统计"}[src]
                )
            month = card["target_period"]  # the month shown is the month a target is set for by default
            expect(field(page, "sc-period")).to_have_value(month)
            field(page, "sc-value").fill("5000")
            page.get_by_test_id("sc-save").click()
            expect(page.get_by_test_id("sc-period-label")).to_contain_text(month)
            page.wait_for_timeout(500)
            got = _get(base, f"/api/guides/targets?period={month}", op)
            assert got["targets"]["g01"]["gmv"] == 5000
            page.get_by_test_id("sc-chart-table-tab").click()  # the saved target is on the card it was set from
            expect(page.get_by_test_id("sc-chart-table")).to_contain_text("5,000")
            expect(page.get_by_test_id("sc-chart").locator("canvas").first).to_be_visible()
            _switch(page, "sc-title", "导购考核", "Guide scorecard", "guide-scorecard")
            page.goto(base + "/console/guides/me")
            expect(page.get_by_test_id("me-not-guide")).to_be_visible()
        finally:
            browser.close()
        g = _h(base, "guide1", "siyu-guide")
        browser, page = _page(pw, base, "guide1", "siyu-guide")
        try:
            page.goto(base + "/console/guides/me")
            me = _get(base, "/api/guides/me", g)
            expect(page.get_by_test_id("me-gmv-value")).to_have_text(display_value(me["row"]["gmv"], "gmv"))
            expect(page.get_by_test_id("me-reachable-value")).to_have_text(display_value(me["row"]["reachable"]))
            expect(page.get_by_test_id("me-rank")).to_contain_text(f"{me['row']['rank']} / {me['guides']}")
            _switch(page, "me-title", "我的业绩", "My performance", "guide-me")
        finally:
            browser.close()
