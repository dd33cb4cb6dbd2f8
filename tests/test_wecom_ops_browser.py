"""The WeCom operations page (/console/wecom/ops) in a real browser against the local WeCom server: mass-send
figures equal the API's, a send created from the form (the 4000-byte limit shown first), a transfer's refused
customer with its reason, tags and a tag rule refreshed, English switch, a guide's view without forms."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain import wecom_events as ev
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom import inheritance, mass_send, tag_rules
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server
from tests.test_wecom_ops_env import ADMIN, wecom_brand
from tests.wecom_server import actions

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.mark.browser
def test_wecom_ops_page(ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=60_000)
    with wecom_brand(ctx, guides=2, per_guide=4) as env, live_server(create_app(ctx)) as base, sync_playwright() as pw:
        brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
        brands.create_user(ctx, "acme", "g1", "s3cret-pass", Role.GUIDE, guide_id="g1")
        exts = [e for _, e in sorted(env.srv.company.relations)]
        seg = env.segment(exts, "目标客户")
        first = mass_send.create(ctx, ADMIN, seg, "首发", name="首发")
        actions.confirm_mass_send(env.srv, first["tasks"][0]["msgid"])
        mass_send.refresh(ctx, ADMIN, first["id"])
        tr = inheritance.start(ctx, ADMIN, "g1", "g2")
        refused = tr["customer_rows"][0]["external_userid"]
        fail = ev.TransferFailed(
            corp_id="ww",
            from_user="sys",
            create_time=0,
            event="change_external_contact",
            change_type="transfer_fail",
            user_id="guide0002",
            external_user_id=refused,
            fail_reason="customer_refused",
        )  # the callback path is tested through HTTP in test_wecom_ops_inheritance
        inheritance.on_transfer_fail(ctx, "acme", fail)
        rule = tag_rules.create_rule(ctx, ADMIN, seg, tag_name="目标", group_name="siyu")
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "s3cret-pass"}).json()
        h = {"Authorization": f"Bearer {token['token']}"}
        api = httpx.get(f"{base}/api/wecom/ops/mass-sends", headers=h).json()
        sent = sum(s["totals"].get("sent", 0) for s in api)
        assert sent == 4

        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.set_default_timeout(60_000)
            console_login(page, base, "admin", "s3cret-pass")
            page.goto(base + "/console/wecom/ops")
            expect(page.get_by_test_id("wops-title")).to_have_text("企业微信运营：标签 / 群发 / 继承")
            expect(page.get_by_test_id("kpi-mass-sent-value")).to_have_text(str(sent))
            expect(page.get_by_test_id("kpi-mass-waiting-value")).to_have_text("4")
            expect(page.get_by_test_id("mass-chart").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "wecom-ops-mass-zh.png"), full_page=True)

            page.get_by_test_id("mass-new").click()
            page.get_by_test_id("mass-segment").click()
            page.get_by_role("option", name="目标客户").click()
            content = page.locator("[data-testid=mass-content]").locator("xpath=descendant-or-self::textarea").first
            content.fill("好" * 1334)
            expect(page.get_by_test_id("mass-bytes")).to_have_text("4002 / 4000 字节")
            page.get_by_test_id("mass-create").click()
            expect(page.get_by_text("WeCom allows at most 4000 bytes", exact=False)).to_be_visible()
            content.fill("周末上新")
            field(page, "mass-name").fill("周末")
            page.get_by_test_id("mass-create").click()
            expect(page.get_by_test_id("kpi-sends-value")).to_have_text("2")
            expect(page.get_by_test_id("kpi-mass-capped-value")).to_have_text("8")  # all 8 had today's message
            expect(page.get_by_test_id("capped-table")).to_be_visible()
            assert len(httpx.get(f"{base}/api/wecom/ops/mass-sends", headers=h).json()) == 2

            page.get_by_test_id("tab-transfers").click()
            expect(page.get_by_test_id("kpi-tr-failed-value")).to_have_text("1")
            page.get_by_test_id(f"transfer-{tr['id']}").click()
            expect(page.get_by_test_id("transfer-customers")).to_contain_text("客户拒绝")
            page.screenshot(path=str(ARTIFACTS / "wecom-ops-transfers-zh.png"), full_page=True)

            page.get_by_test_id("tab-tags").click()
            expect(page.get_by_test_id("kpi-tags-value")).to_have_text("1")
            page.get_by_test_id(f"rule-{rule['id']}-refresh").click()
            expect(page.get_by_test_id(f"rule-{rule['id']}-members")).to_have_text("已打标: 8")
            assert sum(1 for r in env.srv.company.relations.values() if rule["tag_id"] in r.tag_ids) == 8
            page.screenshot(path=str(ARTIFACTS / "wecom-ops-tags-zh.png"), full_page=True)

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("wops-title")).to_have_text("WeCom operations: tags / mass sends / inheritance")
            expect(page.get_by_test_id("kpi-mass-sent-value")).to_have_text(str(sent))
            page.screenshot(path=str(ARTIFACTS / "wecom-ops-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()

            guide = browser.new_page(viewport={"width": 1400, "height": 1000})
            console_login(guide, base, "g1", "s3cret-pass")
            guide.goto(base + "/console/wecom/ops")
            expect(guide.get_by_test_id("kpi-mass-sent-value")).to_have_text("4")
            expect(guide.get_by_test_id("mass-new")).to_have_count(0)
        finally:
            browser.close()
