"""The scripts library console page (/scripts) in a real browser: an operator adds a folder and an item through the
page, the counts and the most-used chart equal the API's (after uses recorded through the API and sidebar sends
prepared / confirmed: prepared vs sent shown), search filters, a bad link is refused with the field named, English,
screenshots; a guide sees the library read-only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.sidebar import sends
from siyu.services.sidebar.verify_file import set_file
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PW = "s3cret-pass"


@pytest.mark.browser
def test_scripts_page(ctx: Context, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    brands.create_brand(ctx, "sb", "Scripts brand")
    brands.create_user(ctx, "sb", "ops", PW, Role.OPERATOR)
    brands.create_user(ctx, "sb", "g1user", PW, Role.GUIDE, guide_id="g1")
    with live_server(create_app(ctx)) as base, sync_playwright() as pw:
        api = httpx.Client(base_url=base, auth=("ops", PW))
        first = api.post("/api/scripts", json={"kind": "text", "title": "节日问候", "body": "{name} 节日快乐！"}).json()
        api.post(
            "/api/scripts",
            json={"kind": "link", "title": "会员权益", "body": "点击查看", "payload": {"url": "https://x.example/vip"}},
        )
        for _ in range(3):
            api.post(f"/api/scripts/{first['id']}/uses", json={"channel": "copy"})
        # the sidebar prepared two sends of it; WeCom confirmed one (that one counts as a use)
        guide = User(0, "sb", "g1user", "导购甲", Role.GUIDE, "g1", "zh")
        tokens = [sends.prepare(ctx, guide, first["id"], customer_id="c1")["token"] for _ in range(2)]
        assert sends.confirm(ctx, guide, tokens[0], "sendChatMessage:ok")["use_count"] == 4
        # with the console mounted, WeCom's verification file is still served at the web root
        set_file(ctx, "sb", "WW_verify_0123456789abcdef.txt", b"0123456789abcdef")
        served = httpx.get(f"{base}/WW_verify_0123456789abcdef.txt")
        assert (served.status_code, served.content) == (200, b"0123456789abcdef")
        assert httpx.get(f"{base}/WW_verify_0123456789abcdeX.txt").status_code == 404
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            console_login(page, base, "ops", PW)
            page.goto(base + "/console/scripts")
            expect(page.get_by_test_id("scripts-title")).to_have_text("话术库 / 素材库")
            expect(page.get_by_test_id(f"script-{first['id']}-uses")).to_have_text("使用次数: 4")
            got = api.get(f"/api/scripts/{first['id']}").json()["usage"]["sends"]
            expect(page.get_by_test_id(f"script-{first['id']}-sends")).to_have_text(
                f"侧边栏：准备 {got['prepared']} 次，已发送 {got['sent']} 次"
            )
            assert (got["prepared"], got["sent"], got["pending"]) == (2, 1, 1)
            expect(page.get_by_test_id("scripts-sends").locator("canvas").first).to_be_visible()
            total = api.get("/api/scripts").json()["total"]
            expect(page.get_by_test_id("scripts-total")).to_have_text(f"共 {total} 条")
            expect(page.get_by_test_id("scripts-top").locator("canvas").first).to_be_visible()

            # a folder and an item made through the page
            field(page, "folder-name").fill("开场白")
            page.get_by_test_id("folder-add").click()
            folder = next(f for f in api.get("/api/scripts/folders").json() if f["name"] == "开场白")
            expect(page.get_by_test_id(f"folder-{folder['id']}")).to_be_visible()
            field(page, "form-title").fill("新客欢迎")
            body = page.locator("[data-testid=form-body]").locator("xpath=descendant-or-self::textarea").first
            body.fill("{name} 您好，我是您的专属顾问{guide}")
            field(page, "form-keywords").fill("欢迎 新客")
            page.get_by_test_id("form-save").click()
            expect(page.get_by_test_id("scripts-total")).to_have_text("共 3 条")
            made = api.get("/api/scripts", params={"q": "欢迎"}).json()["items"]
            assert [m["title"] for m in made] == ["新客欢迎"]

            # a link item without a URL is refused, the field named
            page.get_by_test_id("form-kind").click()
            page.get_by_role("option", name="链接").click()
            field(page, "form-title").fill("坏链接")
            page.get_by_test_id("form-save").click()
            expect(page.get_by_text("payload.url is required")).to_be_visible()

            # an image uploaded through the page (sent later through WeCom temporary media)
            png = tmp_path / "海报.png"
            png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
            page.get_by_test_id("form-kind").click()
            page.get_by_role("option", name="图片").click()
            field(page, "form-title").fill("新品海报")
            page.locator("[data-testid=form-upload] input[type=file]").set_input_files(str(png))
            expect(page.get_by_test_id("form-file-name")).to_have_text("已选择：海报.png")
            page.get_by_test_id("form-save").click()
            expect(page.get_by_test_id("scripts-total")).to_have_text("共 4 条")
            poster = api.get("/api/scripts", params={"q": "海报"}).json()["items"][0]
            assert (poster["kind"], poster["has_file"], poster["payload"]) == ("image", True, {})
            expect(page.get_by_test_id(f"script-{poster['id']}-file")).to_be_visible()

            field(page, "scripts-search").fill("会员")
            expect(page.get_by_test_id("scripts-total")).to_have_text("共 1 条")
            page.screenshot(path=str(ARTIFACTS / "scripts-zh.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("scripts-title")).to_have_text("Scripts library")
            expect(page.get_by_test_id(f"script-{first['id']}-sends")).to_have_text("Sidebar: prepared 2, sent 1")
            page.screenshot(path=str(ARTIFACTS / "scripts-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()

            guide = browser.new_page()
            console_login(guide, base, "g1user", PW)
            guide.goto(base + "/console/scripts")
            expect(guide.get_by_text("导购可查看与使用，编辑请联系运营。")).to_be_visible()
            expect(guide.get_by_test_id("form-save")).to_have_count(0)
            expect(guide.get_by_test_id(f"script-{first['id']}-delete")).to_have_count(0)
        finally:
            browser.close()
