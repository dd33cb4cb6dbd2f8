"""The campaign console in a real browser: build an assist campaign in the builder (a validation error shown on
its field, then fixed; rewards from the catalogue; A/B variants and guide targets; the poster preview), launch it,
several simulated customers help a sharer on the public mobile pages (/m/h/...), and the live dashboard's figures
update by themselves and equal the stats API; the invite tree, the guide leaderboard, shipping a physical gift with
a tracking number; English; a guide sees only their own figures. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.public.visitor import link_token
from siyu.services import brands
from siyu.services import campaigns as camps
from siyu.services.campaigns import people, reports
from siyu.services.campaigns.reports import record_visit
from siyu.services.context import Context
from siyu.services.rewards import create_reward, set_address
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server

MOBILE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.40"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BRAND = "cb"
PW = "s3cret-pass"
ADDRESS = {
    "name": "张三",
    "phone": "13900000001",
    "province": "上海",
    "city": "上海",
    "district": "黄浦区",
    "detail": "人民路1号",
}


@pytest.fixture(scope="module")
def bctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("cbrowser") / "data"))
    brands.create_brand(c, BRAND, "裂变测试")
    brands.create_user(c, BRAND, "cadmin", PW, Role.ADMIN)
    brands.create_user(c, BRAND, "cguide", PW, Role.GUIDE, guide_id="g1")
    create_reward(
        c, BRAND, {"id": "c5", "name": "5元券", "kind": "coupon", "config": {"face_value": 5}, "unit_cost": 5}
    )
    create_reward(c, BRAND, {"id": "mug", "name": "马克杯", "kind": "physical", "unit_cost": 30, "stock": 10})
    yield c
    c.close()


def _select(page: Any, testid: str, option: str) -> None:
    """Pick an option of a Quasar select (opening the menu again if the first click did not open it)."""
    item = page.get_by_role("option", name=option, exact=False).first
    for _ in range(3):
        page.get_by_test_id(testid).click()
        try:
            item.wait_for(state="visible", timeout=5_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    item.click()


def _area(page: Any, testid: str) -> Any:
    return page.locator(f"[data-testid={testid}]").locator("xpath=descendant-or-self::textarea").first


def _kpi(page: Any, key: str) -> Any:
    return page.get_by_test_id(f"kpi-{key}-value")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


@pytest.mark.browser
def test_campaign_console(bctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=30_000)
    with live_server(create_app(bctx)) as base, sync_playwright() as pw:
        tok = httpx.post(f"{base}/api/auth/login", json={"username": "cadmin", "password": PW}).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.set_default_timeout(30_000)
            console_login(page, base, "cadmin", PW)
            page.goto(base + "/console/campaigns")
            expect(page.get_by_test_id("campaigns-title")).to_have_text("裂变活动")
            expect(page.get_by_test_id("campaigns-empty")).to_be_visible()

            # -- the builder ---------------------------------------------------------------------------------------
            page.get_by_test_id("campaign-new").click()
            expect(page.get_by_test_id("builder-title")).to_have_text("新建活动")
            expect(page.get_by_test_id("stock-mug")).to_have_text("10")
            # a group-buy needs its two rewards: the errors land on those fields
            _select(page, "f-kind", "拼团")
            expect(page.get_by_test_id("f-group_buy-team_size")).to_be_visible()
            page.get_by_test_id("builder-validate").click()
            expect(page.get_by_test_id("err-group_buy-initiator_reward_id")).to_be_visible()
            expect(page.get_by_test_id("err-group_buy-joiner_reward_id")).to_be_visible()
            _select(page, "f-kind", "助力")
            field(page, "f-name").fill("好友助力领杯子")
            field(page, "f-title").fill("邀请好友助力，免费领马克杯")
            _select(page, "f-assist-tiers-0-reward_id", "5元券")
            field(page, "f-assist-tiers-0-threshold").fill("2")
            page.get_by_test_id("tier-add").click()
            field(page, "f-assist-tiers-1-threshold").fill("2")  # not rising: an error on this field
            _select(page, "f-assist-tiers-1-reward_id", "马克杯")
            # A/B variants and guide targets: small forms (add / remove rows)
            for _ in range(3):
                page.get_by_test_id("variant-add").click()
            expect(field(page, "f-variants-2-id")).to_have_value("C")
            page.get_by_test_id("variant-2-remove").click()
            expect(page.get_by_test_id("variant-2")).to_have_count(0)
            field(page, "f-variants-1-copy_text").fill("B 组文案")
            page.get_by_test_id("target-add").click()
            field(page, "f-guide_targets-0-guide_id").fill("g1")
            field(page, "f-guide_targets-0-participants").fill("2")
            field(page, "f-guide_targets-0-new_customers").fill("5")
            expect(page.get_by_test_id("poster-preview").locator("img")).to_have_attribute(
                "src", re.compile(r"^data:image/png;base64,")
            )
            expect(page.get_by_test_id("poster-ms")).to_contain_text("毫秒")
            page.get_by_test_id("builder-validate").click()
            err = page.get_by_test_id("err-assist-tiers-1-threshold")
            expect(err).to_contain_text("thresholds must rise")
            expect(page.get_by_test_id("builder-summary")).to_contain_text("1 处需要修改")
            page.screenshot(path=str(ARTIFACTS / "campaign-builder-error-zh.png"), full_page=True)
            field(page, "f-assist-tiers-1-threshold").fill("3")
            page.get_by_test_id("builder-validate").click()
            expect(page.get_by_test_id("builder-summary")).to_have_text("校验通过")
            expect(err).to_be_hidden()
            page.get_by_test_id("builder-save").click()
            expect(page).to_have_url(re.compile(r"/console/campaigns/cp_[0-9a-f]+$"))
            cid = page.url.rsplit("/", 1)[1]
            got = httpx.get(f"{base}/api/campaigns/{cid}/stats", headers=h).json()
            assert got["campaign"]["name"] == "好友助力领杯子" and got["campaign"]["status"] == "draft"
            cd = camps.get(bctx, BRAND, cid)["definition"]
            assert [(t["threshold"], t["reward_id"]) for t in cd["assist"]["tiers"]] == [(2, "c5"), (3, "mug")]
            arms = [(v["id"], v["weight"], v["copy_text"]) for v in cd["variants"]]
            assert arms == [("A", 1, ""), ("B", 1, "B 组文案")]
            assert cd["guide_targets"] == [
                {"guide_id": "g1", "participants": 2, "new_customers": 5, "conversions": 0, "gmv": 0}
            ]

            # -- launch, then customers take part: the dashboard follows by itself ----------------------------------
            expect(page.get_by_test_id("campaign-status")).to_have_text("草稿")
            page.get_by_test_id(f"campaign-{cid}-live").click()
            expect(page.get_by_test_id("campaign-status")).to_have_text("进行中")
            expect(_kpi(page, "participants")).to_have_text("0")
            for _ in range(6):
                record_visit(bctx, cid, variant="", channel="poster")
            # the two sharers come from their guides' links (the seeds); their friends help on the mobile pages
            sharer = camps.join(
                bctx, BRAND, cid, people.parse_identity("phone", "13900001000"), channel="poster", guide_id="g1"
            )
            other = camps.join(
                bctx, BRAND, cid, people.parse_identity("phone", "13900002000"), channel="moments", guide_id="g2"
            )
            friends = [(sharer["token"], f"union-{i}") for i in range(1, 4)] + [(other["token"], "union-9")]
            phones = []
            for n, (token, union) in enumerate(friends):
                phone = browser.new_context(viewport={"width": 390, "height": 844}, user_agent=MOBILE_UA)
                phones.append(phone)
                m = phone.new_page()
                t = link_token(bctx, BRAND, "unionid", union, nickname=f"好友{n}")
                m.goto(f"{base}/m/auth?t={t}&next=/m/h/{token}")
                m.get_by_role("button", name="为 TA 助力").click()
                expect(m.locator(".msg.ok")).to_have_text("助力成功，感谢支持！")
                if n == 2:
                    m.screenshot(path=str(ARTIFACTS / "campaign-help-mobile-zh.png"), full_page=True)
            again = phones[0].new_page()  # the first friend tries a second time: one help per person
            again.goto(f"{base}/m/h/{sharer['token']}")
            again.get_by_role("button", name="为 TA 助力").click()
            expect(again.locator(".msg.err[data-reason=already_helped]")).to_be_visible()
            for phone in phones:
                phone.close()
            views = sum(v["views"] for v in reports.visits(bctx, BRAND, cid))
            st = httpx.get(f"{base}/api/campaigns/{cid}/stats", headers=h).json()
            tot = st["totals"]
            assert (tot["participants"], tot["helpers"], tot["helps_attempted"], tot["visits"]) == (2, 4, 5, views)
            assert views >= 6 + len(friends)  # the help pages count their views
            expect(_kpi(page, "participants")).to_have_text(str(tot["participants"]))  # refreshed by the timer
            expect(_kpi(page, "helpers")).to_have_text(str(tot["helpers"]))
            expect(_kpi(page, "new_customers")).to_have_text(str(tot["new_customers"]))
            expect(_kpi(page, "visit_participation")).to_have_text(_pct(tot["visit_participation"]))
            expect(_kpi(page, "new_user_share")).to_have_text(_pct(tot["new_user_share"]))
            expect(_kpi(page, "completion_rate")).to_have_text(_pct(tot["completion_rate"]))
            expect(_kpi(page, "reward_cost")).to_have_text(f"{tot['reward_cost']:.2f}")
            assert tot["reward_cost"] == 35.0  # the sharer reached both tiers: 5 + 30
            expect(page.get_by_test_id("campaign-funnel").locator("canvas").first).to_be_visible()
            for arm in st["ab"]["comparisons"]:
                expect(page.get_by_test_id(f"ab-verdict-{arm['variant']}")).to_contain_text("为时尚早")
            page.screenshot(path=str(ARTIFACTS / "campaign-dashboard-zh.png"), full_page=True)

            # -- invite tree, leaderboard --------------------------------------------------------------------------
            page.get_by_test_id("tab-tree").click()
            expect(page.get_by_test_id("tree-count")).to_have_text("共 2 个发起者，显示 2 个")
            expect(page.get_by_test_id("tree-chart").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "campaign-tree-zh.png"), full_page=True)
            page.get_by_test_id("tab-leaderboard").click()
            lb = httpx.get(f"{base}/api/campaigns/{cid}/leaderboard", headers=h).json()["items"]
            g1 = next(r for r in lb if r["guide_id"] == "g1")
            assert (g1["participants"], g1["new_customers"]) == (1, 4)  # the sharer + 3 helpers
            page.get_by_test_id("leaderboard-table-tab").click()
            row = page.get_by_test_id("leaderboard-table").locator("tr", has_text="g1")
            expect(row).to_contain_text("1 / 2")
            expect(row).to_contain_text("4 / 5")
            # a guide's promotion link (joins through it are credited to the guide) equals the API's
            with bctx.warehouse.transaction() as cur:
                cur.execute("INSERT INTO guides (brand_id, guide_id, name) VALUES (?, 'g1', '王导购')", [BRAND])
            _select(page, "guide-link-guide", "g1")
            page.get_by_test_id("guide-link-make").click()
            want = httpx.get(f"{base}/api/campaigns/{cid}/guide-link?guide_id=g1", headers=h).json()["path"]
            expect(field(page, "guide-link")).to_have_value(want)

            # -- fulfilment: the mug gets an address, then ships with a tracking number ------------------------------
            ff = httpx.get(f"{base}/api/campaigns/{cid}/fulfilment", headers=h).json()["items"]
            assert [x["reward_id"] for x in ff] == ["mug"]
            gid = ff[0]["grant_id"]
            set_address(bctx, BRAND, gid, ADDRESS)
            page.reload()
            page.get_by_test_id("tab-fulfilment").click()
            expect(page.get_by_test_id(f"ff-{gid}-status")).to_have_text("待发货")
            expect(page.get_by_test_id(f"ff-{gid}-address")).not_to_contain_text("人民路1号")  # masked (PII)
            page.get_by_test_id("ff-reveal").click()  # an audited reveal for the shipper
            expect(page.get_by_test_id(f"ff-{gid}-address")).to_contain_text("人民路1号")
            field(page, f"ff-{gid}-tracking").fill("SF 12")
            page.get_by_test_id(f"ff-{gid}-ship").click()
            expect(page.get_by_text("tracking_no", exact=False).first).to_be_visible()
            field(page, f"ff-{gid}-tracking").fill("SF1234567")
            page.get_by_test_id(f"ff-{gid}-ship").click()
            expect(page.get_by_test_id(f"ff-{gid}-status")).to_have_text("已发货")
            expect(page.get_by_test_id(f"ff-{gid}-tracking-no")).to_have_text("SF1234567")
            shipped = httpx.get(f"{base}/api/campaigns/{cid}/fulfilment", headers=h).json()["items"][0]
            assert (shipped["status"], shipped["shipping_carrier"], shipped["tracking_no"]) == (
                "shipped",
                "顺丰",
                "SF1234567",
            )
            page.screenshot(path=str(ARTIFACTS / "campaign-fulfilment-zh.png"), full_page=True)

            # -- the edit page: a variant's poster from the poster editor, saved as a new version ---------------------
            page.get_by_test_id("tab-overview").click()
            page.get_by_test_id("campaign-edit").click()
            expect(page.get_by_test_id("builder-title")).to_have_text("编辑活动")
            expect(page.get_by_test_id("poster-variant")).to_be_visible()
            _select(page, "poster-variant", "B")
            tpl = _area(page, "poster-template")
            tpl.fill(tpl.input_value().replace('"#FCE9D8"', '"#FFFFFF"', 1))
            expect(page.get_by_test_id("poster-ms")).to_contain_text("毫秒")
            tpl.fill(tpl.input_value().replace('"width": 750', '"width": 10', 1))
            expect(page.get_by_test_id("poster-error")).to_contain_text("width")
            tpl.fill(tpl.input_value().replace('"width": 10', '"width": 750', 1))
            expect(page.get_by_test_id("poster-error")).to_have_text("")
            page.get_by_test_id("poster-apply").click()
            page.screenshot(path=str(ARTIFACTS / "campaign-poster-editor-zh.png"), full_page=True)
            page.get_by_test_id("builder-save").click()
            expect(page).to_have_url(re.compile(rf"/console/campaigns/{cid}$"))
            saved = camps.get(bctx, BRAND, cid)
            poster_b = next(v for v in saved["definition"]["variants"] if v["id"] == "B")["poster"]
            assert saved["version"] == 2 and poster_b["background"] == "#FFFFFF" and poster_b["width"] == 750

            # -- English -----------------------------------------------------------------------------------------
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("tab-overview")).to_contain_text("Live figures")
            expect(page.get_by_test_id("campaign-status")).to_have_text("Live")
            expect(_kpi(page, "participants")).to_have_text(str(tot["participants"]))
            page.screenshot(path=str(ARTIFACTS / "campaign-dashboard-en.png"), full_page=True)
            page.goto(base + "/console/campaigns")
            expect(page.get_by_test_id(f"campaign-{cid}-participants")).to_have_text(str(tot["participants"]))
            expect(page.get_by_test_id(f"campaign-{cid}-status")).to_have_text("Live")
            page.screenshot(path=str(ARTIFACTS / "campaigns-list-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()

            # -- a guide sees only their own ---------------------------------------------------------------------
            gtok = httpx.post(f"{base}/api/auth/login", json={"username": "cguide", "password": PW}).json()["token"]
            gst = httpx.get(f"{base}/api/campaigns/{cid}/stats", headers={"Authorization": f"Bearer {gtok}"}).json()
            assert (gst["totals"]["participants"], gst["totals"]["helpers"]) == (1, 3)
            guide = browser.new_page(viewport={"width": 1400, "height": 1200})
            guide.set_default_timeout(30_000)
            console_login(guide, base, "cguide", PW)
            guide.goto(base + f"/console/campaigns/{cid}")
            expect(_kpi(guide, "participants")).to_have_text("1")
            expect(_kpi(guide, "helpers")).to_have_text("3")
            expect(_kpi(guide, "visits")).to_have_count(0)
            expect(guide.get_by_test_id(f"campaign-{cid}-ended")).to_have_count(0)
            guide.screenshot(path=str(ARTIFACTS / "campaign-dashboard-guide-zh.png"), full_page=True)
        finally:
            browser.close()
