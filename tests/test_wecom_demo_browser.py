"""The demo against the local WeCom server, in a real browser: a small seeded demo brand served live, the local
WeCom server started through ``siyu.services.demo.local_wecom.start`` exactly as ``make demo`` does; an operator
creates a channel code, clicks "模拟客户扫码", sees the welcome (filled text), the channel tag and the attribution
(checked against siyu's records through the API), sees the welcome on /wecom/welcome, and finds the new contact
among the day's 新增 of the asset statement (checked against the API); language switch; screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, local_wecom, seed_demo
from siyu.services.wecom import simulator
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server
from tests.support.postgres import free_port

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SHOTS = "wecom-demo"
CHINA = timezone(timedelta(hours=8))


@pytest.fixture
def demo_small(tmp_path: Path) -> Iterator[Context]:
    """Our own small demo brand (writes allowed; not the shared read-only demo_ctx)."""
    c = Context.open(Settings(data_dir=tmp_path / "data"))
    seed_demo(c, DemoConfig(customers=200, months=3))
    yield c
    c.close()


def _acquired(base: str, h: dict[str, str], day: str) -> int:
    st = httpx.get(f"{base}/api/metrics/asset-statement", params={"start": day, "end": day}, headers=h, timeout=60)
    assert st.status_code == 200, st.text
    return int(st.json()["totals"]["acquired"])


@pytest.mark.browser
@pytest.mark.slow
def test_demo_scan_welcome_tag_attribution_assets(demo_small: Context) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    ctx = demo_small
    ARTIFACTS.mkdir(exist_ok=True)
    channel_id, channel_name = ctx.warehouse.fetch(
        "SELECT channel_id, name FROM channels WHERE brand_id = 'demo' ORDER BY channel_id LIMIT 1"
    )[0]
    guide_id, guide_name = ctx.warehouse.fetch(
        "SELECT guide_id, name FROM guides WHERE brand_id = 'demo' AND wecom_userid IS NOT NULL "
        "ORDER BY guide_id LIMIT 1"
    )[0]
    with live_server(create_app(ctx)) as base:
        proc = local_wecom.start(ctx, "demo", free_port(), base)  # what `siyu demo up` does
        try:
            assert simulator.is_local(ctx, "demo")
            tok = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"}).json()
            h = {"Authorization": f"Bearer {tok['token']}"}
            days = {date.today().isoformat(), datetime.now(CHINA).date().isoformat()}
            before = {d: _acquired(base, h, d) for d in days}  # the add's day is one of these
            with sync_playwright() as pw:
                browser = launch(pw)
                try:
                    _walk(ctx, base, h, browser, channel_id, channel_name, guide_id, guide_name, before)
                finally:
                    browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _walk(
    ctx: Context,
    base: str,
    h: dict[str, str],
    browser: Any,
    channel_id: str,
    channel_name: str,
    guide_id: str,
    guide_name: str,
    before: dict[str, int],
) -> None:
    from playwright.sync_api import expect as ex

    ex.set_options(timeout=30_000)
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    page.set_default_timeout(30_000)
    console_login(page, base, "admin", "siyu-admin")

    # 1. create a channel code through the form
    page.goto(base + "/console/wecom/codes")
    ex(page.get_by_test_id("codes-title")).to_have_text("渠道活码")
    page.get_by_test_id("codes-new").get_by_text("新建活码").click()
    field(page, "code-name").fill("演示活码")
    page.get_by_test_id("code-channel").click()
    page.get_by_role("option", name=f"{channel_name} ({channel_id})").click()
    page.get_by_test_id("code-guides").click()
    page.get_by_role("option", name=f"{guide_name} ({guide_id})").click()
    page.keyboard.press("Escape")
    field(page, "code-coupon-id").fill("cp-new")
    field(page, "code-coupon-title").fill("新人礼券")
    page.get_by_test_id("code-create").click()
    ex(page.get_by_test_id("code-qr")).to_be_visible()
    code = httpx.get(f"{base}/api/wecom/codes", headers=h).json()["items"][0]
    assert code["name"] == "演示活码" and code["channel_id"] == channel_id
    ex(page.get_by_test_id("code-adds-value")).to_have_text("0")

    # 2. a simulated customer scans it
    ex(page.get_by_test_id("sim-panel")).to_be_visible()
    page.get_by_test_id("sim-scan").click()
    ex(page.get_by_test_id("sim-result")).to_be_visible()
    adds = httpx.get(f"{base}/api/wecom/codes/{code['id']}/adds", headers=h).json()["items"]
    assert len(adds) == 1
    add = adds[0]
    assert add["welcome"] == "sent" and add["tag"] == "marked" and add["guide_id"] == guide_id
    assert "新人礼券" in add["welcome_text"] and guide_name in add["welcome_text"]  # variables filled
    ex(page.get_by_test_id("sim-customer")).to_contain_text(add["external_userid"])
    ex(page.get_by_test_id("sim-welcome")).to_contain_text("已发送")
    ex(page.get_by_test_id("sim-text")).to_contain_text(add["welcome_text"])
    ex(page.get_by_test_id("sim-tag")).to_contain_text(channel_name)  # the channel's tag, from identifier_tags
    ex(page.get_by_test_id("sim-attributed")).to_contain_text(f"{channel_id} · 导购 {guide_id}")
    st = httpx.get(f"{base}/api/wecom/codes/{code['id']}/stats", headers=h).json()
    assert st["adds"] == 1
    ex(page.get_by_test_id("code-adds-value")).to_have_text("1")
    ex(page.get_by_test_id("code-adds-table")).to_contain_text(add["external_userid"])
    page.screenshot(path=str(ARTIFACTS / f"{SHOTS}-scan-zh.png"), full_page=True)

    # 3. the welcome messages page
    page.goto(base + "/console/wecom/welcome")
    ex(page.get_by_test_id("welc-title")).to_have_text("欢迎语")
    items = httpx.get(f"{base}/api/wecom/welcome", headers=h).json()["items"]
    mine = next(i for i in items if i["code_id"] == code["id"])
    assert mine["sent"] == 1 and mine["coupon"] == "新人礼券"
    ex(page.get_by_test_id("welc-sent-value")).to_have_text(str(sum(i["sent"] for i in items)))
    ex(page.get_by_test_id("welc-table")).to_contain_text("演示活码")
    prev = httpx.get(f"{base}/api/wecom/welcome/{code['id']}/preview", params={"name": "小林"}, headers=h).json()
    assert prev["text"].startswith("小林") and "新人礼券" in prev["text"]
    ex(page.get_by_test_id("welc-preview-text")).to_have_text(prev["text"])
    field(page, "welc-sample").fill("阿May")
    ex(page.get_by_test_id("welc-preview-text")).to_contain_text("阿May")
    ex(page.get_by_test_id("welc-sends")).to_contain_text(add["external_userid"])
    page.screenshot(path=str(ARTIFACTS / f"{SHOTS}-welcome-zh.png"), full_page=True)

    # 4. the asset statement: the day's 新增 includes the new contact
    rel = ctx.warehouse.fetch(
        "SELECT added_at, channel_id FROM relations WHERE brand_id = 'demo' AND external_userid = ?",
        [add["external_userid"]],
    )
    assert len(rel) == 1 and rel[0][1] == channel_id  # attributed in the warehouse too
    today = rel[0][0].date().isoformat()
    after = _acquired(base, h, today)
    assert today in before and after == before[today] + 1
    page.goto(base + "/console/metrics/operations")
    ex(page.get_by_test_id("ops-title")).to_be_visible()
    field(page, "ops-start").fill(today)
    field(page, "ops-end").fill(today)
    page.get_by_test_id("ops-apply").click()
    ex(page.get_by_test_id("ops-acquired-value")).to_have_text(str(after))
    page.screenshot(path=str(ARTIFACTS / f"{SHOTS}-assets-zh.png"), full_page=True)

    # 5. English, then the simulated delete
    page.goto(base + "/console/wecom/codes")
    page.get_by_test_id("lang-switch").click()
    ex(page.get_by_test_id("codes-title")).to_have_text("Channel codes")
    ex(page.get_by_test_id("sim-scan")).to_contain_text("Simulate a scan")
    page.goto(base + "/console/wecom/welcome")
    ex(page.get_by_test_id("welc-title")).to_have_text("Welcome messages")
    page.screenshot(path=str(ARTIFACTS / f"{SHOTS}-welcome-en.png"), full_page=True)
    page.goto(base + "/console/wecom/codes")
    page.get_by_test_id("sim-delete").click()  # the simulated customer deletes the guide (删粉)
    ex(page.get_by_test_id("sim-result")).to_contain_text("lost: customer")
    st = httpx.get(f"{base}/api/wecom/codes/{code['id']}/stats", headers=h).json()
    assert st["lost_customer"] == 1 and st["net"] == 0
    ex(page.get_by_test_id("code-net-value")).to_have_text("0")
    page.screenshot(path=str(ARTIFACTS / f"{SHOTS}-delete-en.png"), full_page=True)
    page.get_by_test_id("lang-switch").click()
    ex(page.get_by_test_id("codes-title")).to_have_text("渠道活码")
