"""The sidebar in a real browser at a phone viewport (Playwright's iPhone 12: 390×844, mobile, touch) against a
live server and the local WeCom server, as the WeCom client runs it: the WeCom user agent and a ``wx`` object
standing in for the JS-SDK (it records calls and answers ``getCurExternalContact`` with the chat's customer).
OAuth → the chat's customer → the 360 (figures equal the sidebar API's), the agentConfig signature (checked
against the ticket the WeCom server issued), a tag added reaching WeCom, a script sent through
``sendChatMessage`` (use counted once the callback says ok), no horizontal overflow, English, another guide's
customer refused; the sidebar in a group chat (summary, scripts, sent vs cancelled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from siyu.connectors.wecom.jssdk import signature
from siyu.services.context import Context
from siyu.stores.state.journey_models import JourneyRow, JourneyTaskRow
from tests.support.browser import launch, require_chromium
from tests.test_sidebar_api import PW, Side, sidebar_env
from tests.wecom_server.routes_jssdk import state

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

FAKE_WX = """
window.__wx = [];
window.wx = {
  config: c => window.__wx.push(['config', JSON.parse(JSON.stringify(c))]),
  ready: f => setTimeout(f, 0),
  agentConfig: c => {
    window.__wx.push(['agentConfig', JSON.parse(JSON.stringify(c))]);
    setTimeout(() => c.success({}), 0);
  },
  invoke: (name, args, cb) => {
    window.__wx.push([name, args]);
    const here = {err_msg: 'getCurExternalContact:ok', userId: '%s'};
    cb(name === 'getCurExternalContact' ? here : {err_msg: name + ':ok'});
  },
};
"""


def seed_customer(ctx: Context, side: Side) -> str:
    """Two orders, a CLV prediction and an overdue journey task for guide g1's first customer."""
    ext = side.ext_of("guide0001")
    cid = side.env.customer_of(ext)
    now = datetime.now(UTC).replace(tzinfo=None)
    with ctx.warehouse.transaction() as cur:
        for i, (days, amount) in enumerate([(40, 199.0), (10, 358.5)]):
            cur.execute(
                "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount) "
                "VALUES ('acme', ?, 'external_userid', ?, ?, ?)",
                [f"o{i}", ext, now - timedelta(days=days), amount],
            )
        cur.execute(
            "INSERT INTO clv_predictions VALUES ('acme', ?, 'fit1', 1, 30, 40, 278.75, 0.83, 1.4, 390.2, 612.4, ?)",
            [cid, now],
        )
    with ctx.sessions() as s, s.begin():
        s.add(JourneyRow(id="j1", brand_id="acme", name="新客 7 天旅程", status="active"))
        s.add(
            JourneyTaskRow(
                id="j1:e1:call",
                brand_id="acme",
                journey_id="j1",
                entry_id="e1",
                node_id="call",
                customer_id=cid,
                guide_id="g1",
                kind="call",
                title="首单回访",
                script="您好，收到货了吗？",
                due_at=now - timedelta(hours=2),
            )
        )
    return cid


@pytest.mark.browser
def test_sidebar_at_phone_viewport(ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    with sidebar_env(ctx) as side, sync_playwright() as pw:
        cid = seed_customer(ctx, side)
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        script = admin.post(
            "/api/scripts", json={"kind": "text", "title": "回访话术", "body": "{name} 您好，我是{guide}，用得还好吗？"}
        ).json()
        state(side.env.srv).member = "guide0001"  # signed in to the WeCom app as guide g1
        browser = launch(pw)
        try:
            phone = pw.devices["iPhone 12"]
            assert (phone["is_mobile"], phone["has_touch"], phone["viewport"]["width"]) == (True, True, 390)
            context = browser.new_context(
                **{
                    **phone,
                    "user_agent": phone["user_agent"] + " wxwork/4.1.0 MicroMessenger/7.0.1",
                    "viewport": {"width": 390, "height": 844},
                    "locale": "zh-CN",
                },
            )
            context.add_init_script(FAKE_WX % side.ext_of("guide0001"))
            page = context.new_page()
            page.goto(side.base + "/sidebar/acme/")  # → WeCom OAuth → back with a code → the chat's customer
            page.wait_for_url(f"**/sidebar/acme/c/{cid}")
            cookie = {c["name"]: c["value"] for c in context.cookies() if c["name"] == "siyu_sidebar"}
            api = httpx.Client(base_url=side.base, cookies=cookie)
            view = api.get(f"/sidebar/acme/api/customer/{cid}").json()

            expect(page.get_by_test_id("name")).to_have_text(view["name"] or cid)
            expect(page.get_by_test_id("orders-total")).to_have_text(f"共 {view['orders_total']} 笔")
            assert view["orders_total"] == 2
            expect(page.get_by_test_id("p-alive")).to_have_text("83%")
            expect(page.get_by_test_id("clv")).to_have_text("¥612.40")
            expect(page.get_by_test_id("lifecycle")).to_have_text(view["stages"]["lifecycle_zh"])
            expect(page.get_by_test_id("rfm")).to_have_text(view["stages"]["rfm"]["rfm_class_zh"])
            expect(page.get_by_test_id("next-action")).to_have_attribute("data-code", "overdue_task")
            expect(page.get_by_test_id("tasks")).to_contain_text("首单回访")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone

            # the page configured the JS-SDK with a signature WeCom would accept
            calls = page.evaluate("window.__wx")
            agent = next(args for name, args in calls if name == "agentConfig")
            tickets = {kind: tok for tok, (kind, _exp) in state(side.env.srv).tickets.items()}
            url = page.url.split("#")[0]
            assert agent["signature"] == signature(tickets["agent"], agent["nonceStr"], agent["timestamp"], url)
            assert [n for n, _ in calls] == ["config", "agentConfig"]  # (the entry page asked getCurExternalContact)

            # a tag added on the phone reaches WeCom
            page.get_by_test_id("tag-pick").select_option(label="已到店")
            page.get_by_test_id("tag-add").tap()
            expect(page.locator(f"[data-tag='{side.tag_ids[1]}']")).to_be_visible()
            rel = side.env.srv.company.relations[("guide0001", side.ext_of("guide0001"))]
            assert rel.tag_ids == [side.tag_ids[1]]
            page.screenshot(path=str(ARTIFACTS / "sidebar-customer-zh.png"), full_page=True)

            # a script sent: inserted into the chat through sendChatMessage, its use counted
            page.locator(f"[data-send='{script['id']}']").tap()
            expect(page.locator(f"[data-use='{script['id']}']")).to_have_text("1")
            sent = [args for name, args in page.evaluate("window.__wx") if name == "sendChatMessage"]
            text = f"{view['name']} 您好，我是导购1，用得还好吗？"
            assert sent == [{"msgtype": "text", "enterChat": True, "text": {"content": text}}]
            assert admin.get(f"/api/scripts/{script['id']}").json()["usage"]["by_guide"] == {"g1": 1}

            page.get_by_test_id("note-text").fill("喜欢浅色系")
            page.get_by_test_id("note-kind").select_option("call")
            page.get_by_test_id("note-stage").select_option("方案")
            page.get_by_test_id("note-add").tap()
            expect(page.get_by_test_id("notes")).to_contain_text("喜欢浅色系")
            expect(page.get_by_test_id("sales-stage")).to_have_text("方案")
            assert api.get(f"/sidebar/acme/api/customer/{cid}").json()["sales"]["stage"] == "方案"
            page.get_by_test_id("lang").tap()
            expect(page.get_by_test_id("next-action")).to_contain_text("Do the overdue task first")
            expect(page.get_by_test_id("orders-total")).to_have_text("2 in all")
            page.screenshot(path=str(ARTIFACTS / "sidebar-customer-en.png"), full_page=True)

            other = page.goto(side.base + f"/sidebar/acme/c/{side.cid_of('guide0002')}")
            assert other is not None and other.status == 403
            expect(page.get_by_test_id("message")).to_have_text("This is not one of your customers.")
            context.close()
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh"])
def test_outside_wecom_search(ctx: Context, lang: str) -> None:
    """Outside WeCom (a signed link, an ordinary phone browser): the guide searches their own customers only."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with sidebar_env(ctx) as side, sync_playwright() as pw:
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        link = admin.post("/api/sidebar/links", json={"guide_id": "g1"}).json()["path"]

        def name_of(cid: str) -> str:  # the stored name (what a guide types), not a masked display
            return str(ctx.warehouse.fetch("SELECT name FROM customers WHERE customer_id = ?", [cid])[0][0])

        mine, theirs = name_of(side.cid_of("guide0001")), name_of(side.cid_of("guide0002"))
        browser = launch(pw)
        try:
            context = browser.new_context(**pw.devices["iPhone 12"])
            page = context.new_page()
            page.goto(side.base + link)
            expect(page.get_by_test_id("outside")).to_be_visible()
            page.get_by_test_id("search").fill(mine)
            page.get_by_test_id("search").press("Enter")
            expect(page.get_by_test_id("results")).to_contain_text(mine)
            page.get_by_test_id("search").fill(theirs)
            page.get_by_test_id("search").press("Enter")
            expect(page.get_by_test_id("results")).to_contain_text("没有找到客户")
            context.close()
        finally:
            browser.close()


GROUP_WX = """
window.__wx = [];
window.__replies = ['sendChatMessage:ok', 'sendChatMessage:cancel'];
window.wx = {
  config: c => {},
  ready: f => setTimeout(f, 0),
  agentConfig: c => setTimeout(() => c.success({}), 0),
  invoke: (name, args, cb) => {
    window.__wx.push([name, args]);
    if (name === 'getContext') cb({err_msg: 'getContext:ok', entry: 'group_chat_tools'});
    else if (name === 'getCurExternalChat') cb({err_msg: 'getCurExternalChat:ok', chatId: '%s'});
    else if (name === 'sendChatMessage') setTimeout(() => cb({err_msg: window.__replies.shift()}), 50);
    else cb({err_msg: name + ':fail'});
  },
};
"""


@pytest.mark.browser
def test_sidebar_in_a_group_chat(ctx: Context) -> None:
    """Opened from a group chat's toolbar (getContext → group_chat_tools, getCurExternalChat → the chat id): the
    group's summary equals the API's, the scripts library filters by words and folder, a script sent into the group
    counts once WeCom's callback says sendChatMessage:ok and not when it says cancel; English; phone width."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    from siyu.services.wecom.groups import sync_groups
    from tests.wecom_server import actions

    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    with sidebar_env(ctx) as side, sync_playwright() as pw:
        srv = side.env.srv
        g1 = sorted(e for (u, e) in srv.company.relations if u == "guide0001")
        g2 = sorted(e for (u, e) in srv.company.relations if u == "guide0002")
        chat = actions.add_group(srv, "guide0001", [*g1[:2], g2[0]], name="老客福利群")
        sync_groups(ctx, "acme")
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        folder = admin.post("/api/scripts/folders", json={"name": "社群运营"}).json()
        notice = admin.post(
            "/api/scripts",
            json={"kind": "text", "title": "群活动通知", "body": "{name}好，周六店庆", "folder_id": folder["id"]},
        ).json()
        admin.post("/api/scripts", json={"kind": "text", "title": "售后话术", "body": "请问哪里不满意？"})
        state(srv).member = "guide0001"
        browser = launch(pw)
        try:
            phone = pw.devices["iPhone 12"]
            context = browser.new_context(**{**phone, "user_agent": phone["user_agent"] + " wxwork/4.1.0"})
            context.add_init_script(GROUP_WX % chat)
            page = context.new_page()
            page.goto(side.base + "/sidebar/acme/")
            page.wait_for_url(f"**/sidebar/acme/g/{chat}")
            cookie = {c["name"]: c["value"] for c in context.cookies() if c["name"] == "siyu_sidebar"}
            api = httpx.Client(base_url=side.base, cookies=cookie)
            g = api.get(f"/sidebar/acme/api/group/{chat}").json()
            expect(page.get_by_test_id("group-name")).to_have_text("老客福利群")
            expect(page.get_by_test_id("group-owner")).to_have_text(g["owner_name"])
            expect(page.get_by_test_id("group-member-count")).to_have_text(str(g["member_count"]))
            expect(page.get_by_test_id("group-customer-count")).to_have_text(str(g["customer_count"]))
            expect(page.get_by_test_id("group-mine-count")).to_have_text(str(g["mine_count"]))
            assert g["mine_count"] == sum(m["mine"] for m in g["members"]) >= 2
            for m in g["lifecycle_mix"]:
                expect(page.get_by_test_id(f"mix-{m['stage']}-n")).to_have_text(str(m["customers"]))
            assert sum(m["customers"] for m in g["lifecycle_mix"]) == 3
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            # search and folders narrow the library
            items = page.locator("#script-list [data-script]")
            expect(items).to_have_count(2)
            page.get_by_test_id("script-search").fill("售后")
            expect(items).to_have_count(1)
            page.get_by_test_id("script-search").fill("")
            page.get_by_test_id("script-folder").select_option(str(folder["id"]))
            expect(items).to_have_count(1)
            expect(page.locator(f"[data-script='{notice['id']}']")).to_be_visible()

            # sent: WeCom's callback says ok → counted; the second time the guide cancels → not counted
            page.locator(f"[data-send='{notice['id']}']").tap()
            expect(page.locator(f"[data-use='{notice['id']}']")).to_have_text("1")
            page.locator(f"[data-send='{notice['id']}']").tap()
            expect(page.locator("#toast")).to_have_text("未发送")
            confirms = [c["args"] for c in page.evaluate("window.siyuSidebarCalls") if c["name"] == "confirm"]
            assert [(c["status"], c["counted"]) for c in confirms] == [("sent", True), ("cancelled", False)]
            sent = [args for name, args in page.evaluate("window.__wx") if name == "sendChatMessage"]
            assert sent == [{"msgtype": "text", "enterChat": True, "text": {"content": "大家好，周六店庆"}}] * 2
            expect(page.locator(f"[data-use='{notice['id']}']")).to_have_text("1")
            usage = admin.get(f"/api/scripts/{notice['id']}").json()
            assert usage["use_count"] == 1
            assert (usage["usage"]["sends"]["prepared"], usage["usage"]["sends"]["sent"]) == (2, 1)
            page.screenshot(path=str(ARTIFACTS / "sidebar-group-zh.png"), full_page=True)

            page.get_by_test_id("lang").tap()
            expect(page.get_by_test_id("group-members-label")).to_contain_text("Members")
            expect(page.get_by_test_id("scripts")).to_contain_text("All folders")
            page.screenshot(path=str(ARTIFACTS / "sidebar-group-en.png"), full_page=True)
            page.get_by_test_id("group-members").locator("a").first.tap()
            page.wait_for_url("**/sidebar/acme/c/*")
            context.close()
        finally:
            browser.close()
