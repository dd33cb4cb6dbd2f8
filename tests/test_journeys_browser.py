"""The journey console in a real browser on a small seeded brand of its own: the list (counts equal the API's, a
journey created from a template), the flow editor (per-node counts on the diagram equal the stats API, a node
edited into an invalid state shows the error on that node, fixed, saved as a new version and published, the
experiment's verdict), the task inbox of a guide (only their own tasks; a completed task leaves the list) and of
an admin (completion rate per guide), English switch, screenshots."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.console.tasks_page import dom_id
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys import facts
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.scheduled import tick
from siyu.stores.state.journey_models import JourneyTaskRow
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BRAND = "jb"
PW = "s3cret-pass"
FLOW: dict[str, Any] = {
    "trigger": {"kind": "manual"},
    "goal": {"event": "Order Completed"},
    "start": "ab",
    "nodes": [
        {
            "id": "ab",
            "kind": "experiment",
            "label": "回访 vs 优惠券",
            "arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
        },
        {
            "id": "call",
            "kind": "action",
            "label": "导购回访",
            "action": {
                "type": "task",
                "task_kind": "call",
                "title": "老客回访",
                "script": "您好，最近用得怎么样？",
                "due_hours": 4,
            },
        },
        {"id": "coupon", "kind": "action", "label": "发券", "action": {"type": "coupon", "coupon": "回归券"}},
        {"id": "wait1", "kind": "wait", "label": "观察", "minutes": 60},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [
        {"from": "ab", "to": "call", "branch": "a"},
        {"from": "ab", "to": "coupon", "branch": "b"},
        {"from": "call", "to": "wait1"},
        {"from": "coupon", "to": "wait1"},
        {"from": "wait1", "to": "end"},
    ],
}


@pytest.fixture(scope="module")
def bctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("jbrowser") / "data"))
    seed_demo(c, DemoConfig(customers=120, brand_id=BRAND))
    yield c
    c.close()


def _svg_text(page: Any) -> str:
    """The text of the diagram's labels (ECharts renders with SVG: each label line is a text element)."""
    texts = page.locator("[data-testid=flow-chart] svg text").evaluate_all("els => els.map(e => e.textContent)")
    return "\n".join(t or "" for t in texts)


@pytest.mark.browser
def test_journey_console(bctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=60_000)
    admin = brands.create_user(bctx, BRAND, "jadmin", PW, Role.ADMIN)
    j = jdef.create_journey(bctx, admin, "老客回访实验", FLOW)
    jdef.publish(bctx, admin, j.id)
    ids = [
        r[0] for r in bctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id = ? ORDER BY 1", [BRAND])
    ]
    # 40 customers who have a guide, so about 20 call tasks (the arms split at random) go to the 12 guides: some
    # guide has 2 or more (by pigeonhole once 13 or more land on "call"); 40 of all customers left that to chance
    guided = sorted(facts.guides_of(bctx, BRAND, ids))[:40]
    assert len(guided) == 40
    assert enter_customers(bctx, BRAND, j.id, [(c, "manual:ui") for c in guided]) == 40
    tick(bctx)
    with bctx.sessions() as s:
        tasks = list(s.scalars(select(JourneyTaskRow).where(JourneyTaskRow.journey_id == j.id)))
    per_guide = Counter(t.guide_id for t in tasks if t.guide_id)
    guide_id, n_own = per_guide.most_common(1)[0]
    assert n_own >= 2 and len(per_guide) >= 2
    other = next(dom_id(t.id) for t in tasks if t.guide_id not in (guide_id, None))
    brands.create_user(bctx, BRAND, "jguide", PW, Role.GUIDE, guide_id=guide_id)

    with live_server(create_app(bctx)) as base, sync_playwright() as pw:
        tok = httpx.post(f"{base}/api/auth/login", json={"username": "jadmin", "password": PW}).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        stats = httpx.get(f"{base}/api/journeys/{j.id}/stats", headers=h).json()
        assert stats["entries"] == 40
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.set_default_timeout(60_000)
            console_login(page, base, "jadmin", PW)
            # -- the list -----------------------------------------------------------------------------------
            page.goto(base + "/console/journeys")
            expect(page.get_by_test_id("journeys-title")).to_have_text("客户旅程 / SOP")
            expect(page.get_by_test_id(f"journey-{j.id}-entries")).to_have_text(str(stats["entries"]))
            expect(page.get_by_test_id(f"journey-{j.id}-active")).to_have_text(str(stats["active"]))
            expect(page.get_by_test_id(f"journey-{j.id}-status")).to_have_text("运行中")
            page.get_by_test_id("template-select").click()
            page.get_by_role("option", name="cadence", exact=False).click()
            field(page, "template-name").fill("三天一次")
            page.get_by_test_id("template-create").click()
            expect(page.get_by_text("三天一次", exact=True)).to_be_visible()
            created = [
                x for x in httpx.get(f"{base}/api/journeys", headers=h).json()["items"] if x["name"] == "三天一次"
            ]
            assert len(created) == 1 and created[0]["definition"]["trigger"]["every_days"] == 3
            expect(page.get_by_test_id(f"journey-{created[0]['id']}-status")).to_have_text("草稿")
            expect(page.get_by_test_id("journeys-chart").locator("canvas").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "journeys-list-zh.png"), full_page=True)

            # -- the flow editor: counts on the diagram = the stats API ---------------------------------------
            page.get_by_test_id(f"journey-{j.id}-name").click()
            expect(page.get_by_test_id("journey-title")).to_have_text("老客回访实验")
            expect(page.locator("[data-testid=flow-chart] svg text").first).to_be_visible()
            svg = _svg_text(page)
            for n in stats["nodes"]:
                assert f"{n['id']} · 进入 {n['entered']} · 等待 {n['waiting']}" in svg, (n, svg)
            wait_stats = next(n for n in stats["nodes"] if n["id"] == "wait1")
            assert wait_stats["waiting"] == 40
            exp = stats["experiments"][0]
            assert exp["verdict"]["decision"] == "too_early"
            expect(page.get_by_test_id("exp-ab-verdict")).to_have_text("为时尚早：差异尚不显著")
            page.screenshot(path=str(ARTIFACTS / "journey-editor-zh.png"), full_page=True)

            # edit a node into an invalid state: the error shows on that node
            page.get_by_test_id("node-select").click()
            page.get_by_role("option", name="wait1", exact=True).click()
            field(page, "nf-minutes").fill("0")
            page.get_by_test_id("node-apply").click()
            page.get_by_test_id("validate").click()
            expect(page.get_by_test_id("node-error-wait1")).to_contain_text("minutes")
            expect(page.get_by_test_id("panel-error")).to_contain_text("minutes")
            assert "⚠ minutes" in _svg_text(page)
            page.screenshot(path=str(ARTIFACTS / "journey-editor-error-zh.png"), full_page=True)
            field(page, "nf-minutes").fill("120")
            page.get_by_test_id("node-apply").click()
            page.get_by_test_id("validate").click()
            expect(page.get_by_test_id("node-error-wait1")).to_have_count(0)
            assert "⚠" not in _svg_text(page)
            page.get_by_test_id("publish").click()
            expect(page.get_by_test_id("journey-version")).to_contain_text("v2 · 已发布 v2")
            got = httpx.get(f"{base}/api/journeys/{j.id}", headers=h).json()
            assert (got["version"], got["published_version"], got["status"]) == (2, 2, "active")
            assert next(n for n in got["definition"]["nodes"] if n["id"] == "wait1")["minutes"] == 120

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("tab-flow")).to_contain_text("Flow")
            expect(page.get_by_test_id("exp-ab-verdict")).to_have_text("Too early: no significant difference yet")
            expect(page.locator("[data-testid=flow-chart] svg text").first).to_be_visible()
            assert f"wait1 · entered {wait_stats['entered']} · waiting {wait_stats['waiting']}" in _svg_text(page)
            page.screenshot(path=str(ARTIFACTS / "journey-editor-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()

            # -- the task inbox of a guide: only their own; a completed task leaves the list ------------------
            gtok = httpx.post(f"{base}/api/auth/login", json={"username": "jguide", "password": PW}).json()["token"]
            gh = {"Authorization": f"Bearer {gtok}"}
            mine = httpx.get(f"{base}/api/journeys/tasks", headers=gh).json()
            assert mine["total"] == n_own and {t["guide_id"] for t in mine["items"]} == {guide_id}
            guide = browser.new_page(viewport={"width": 1400, "height": 1200})
            guide.set_default_timeout(60_000)
            console_login(guide, base, "jguide", PW)
            guide.goto(base + "/console/tasks")
            expect(guide.get_by_test_id("tasks-title")).to_have_text("导购任务")
            expect(guide.get_by_test_id("kpi-tasks-value")).to_have_text(str(n_own))
            for t in mine["items"]:
                expect(guide.get_by_test_id(f"task-{dom_id(t['id'])}")).to_be_visible()
            expect(guide.get_by_test_id(f"task-{other}")).to_have_count(0)
            first = mine["items"][0]
            expect(guide.get_by_test_id(f"task-{dom_id(first['id'])}-script")).to_have_text("您好，最近用得怎么样？")
            expect(guide.get_by_test_id(f"task-{dom_id(first['id'])}-customer")).to_have_attribute(
                "href", f"/console/customers/{first['customer_id']}"
            )
            guide.screenshot(path=str(ARTIFACTS / "tasks-guide-zh.png"), full_page=True)
            field(guide, f"task-{dom_id(first['id'])}-note").fill("已电话联系，下周到店")
            guide.get_by_test_id(f"task-{dom_id(first['id'])}-complete").click()
            expect(guide.get_by_test_id(f"task-{dom_id(first['id'])}")).to_have_count(0)
            expect(guide.get_by_test_id("kpi-tasks-value")).to_have_text(str(n_own - 1))
            done = httpx.get(f"{base}/api/journeys/tasks?status=done", headers=gh).json()["items"]
            assert [(t["id"], t["note"], t["done_by"]) for t in done] == [
                (first["id"], "已电话联系，下周到店", "jguide")
            ]
            guide.get_by_test_id("filter-status").click()
            guide.get_by_role("option", name="已完成", exact=True).click()
            expect(guide.get_by_test_id(f"task-{dom_id(first['id'])}-status")).to_have_text("已完成")
            expect(guide.get_by_test_id("kpi-tasks-value")).to_have_text("1")
            guide.get_by_test_id("lang-switch").click()
            expect(guide.get_by_test_id("tasks-title")).to_have_text("Guide tasks")
            guide.screenshot(path=str(ARTIFACTS / "tasks-guide-en.png"), full_page=True)
            guide.get_by_test_id("lang-switch").click()

            # a guide reads the journey with their own customers' figures, without editing controls
            gstats = httpx.get(f"{base}/api/journeys/{j.id}/stats", headers=gh).json()
            assert 0 < gstats["entries"] < stats["entries"]
            guide.goto(base + f"/console/journeys/{j.id}")
            expect(guide.get_by_test_id("kpi-entries-value")).to_have_text(str(gstats["entries"]))
            expect(guide.get_by_test_id("validate")).to_have_count(0)
            expect(guide.get_by_test_id("node-apply")).to_have_count(0)

            # -- an admin sees every guide's tasks and the completion rate per guide ---------------------------
            page.goto(base + "/console/tasks")
            expect(page.get_by_test_id("kpi-tasks-value")).to_have_text(str(len(tasks) - 1))
            expect(page.get_by_test_id(f"task-{other}")).to_be_visible()
            page.get_by_test_id("guide-rates-table-tab").click()
            rate = f"{1 / n_own:.3f}".rstrip("0")
            row = page.get_by_test_id("guide-rates-table").locator("tr", has_text=guide_id)
            expect(row).to_contain_text(rate[:4])
            page.get_by_test_id("filter-guide").click()
            page.get_by_role("option", name=guide_id, exact=True).click()
            expect(page.get_by_test_id("kpi-tasks-value")).to_have_text(str(n_own - 1))
            page.screenshot(path=str(ARTIFACTS / "tasks-admin-zh.png"), full_page=True)
        finally:
            browser.close()
