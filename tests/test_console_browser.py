"""The console in a real browser (Debian chromium via Playwright) on a live server with seeded data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from siyu.api.app import create_app
from siyu.i18n import CATALOGUE, t
from siyu.services.context import Context
from tests.support.browser import field, launch, require_chromium
from tests.support.live import live_server
from tests.test_customers_api import PASSWORD, seed

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def test_catalogue_has_every_key_in_both_languages() -> None:
    assert set(CATALOGUE["zh"]) == set(CATALOGUE["en"])
    assert t("nav.customers") == "客户" and t("nav.customers", "en") == "Customers"
    assert t("customers.total", "en", total=3) == "3 customers"
    assert t("nav.customers", "fr") == "客户"  # unknown languages fall back to Chinese


@pytest.mark.browser
def test_console_login_search_360_language(ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    s = seed(ctx)
    ARTIFACTS.mkdir(exist_ok=True)
    with live_server(create_app(ctx)) as base, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(20_000)
            page.goto(base + "/")
            expect(page).to_have_url(re.compile(r"/console/login$"))
            field(page, "username").fill("admin")
            field(page, "password").fill("wrong-password")
            page.get_by_test_id("login").click()
            expect(page.get_by_text("用户名或密码错误")).to_be_visible()
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login").click()
            expect(page).to_have_url(re.compile(r"/console/customers$"))
            expect(page.get_by_text("共 3 位客户")).to_be_visible()
            expect(page.get_by_text("即将推出").first).to_be_visible()
            expect(page.locator(".ag-cell", has_text="王*")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "console-customers.png"))

            field(page, "search").fill("13800138000")
            field(page, "search").press("Enter")
            expect(page.get_by_text("共 1 位客户")).to_be_visible()
            page.locator(".ag-cell", has_text="张*").click()
            expect(page).to_have_url(re.compile(rf"/console/customers/{s.zhang}$"))
            expect(page.get_by_text("基本资料")).to_be_visible()
            expect(page.get_by_test_id("tag")).to_have_text("VIP会员")
            expect(page.get_by_test_id("relations")).to_contain_text("王导购")
            expect(page.get_by_test_id("relations")).to_contain_text("扫描二维码")  # WeCom add_way 1, labelled
            expect(page.get_by_test_id("orders")).to_contain_text("o1")
            expect(page.get_by_test_id("orders")).to_contain_text("¥199.00")  # money as money
            expect(page.get_by_test_id("orders")).to_contain_text("已支付")  # status paid, labelled
            expect(page.get_by_test_id("profile-created_at")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
            expect(page.get_by_test_id("identities")).not_to_contain_text(re.compile(r"\dT\d"))  # no ISO "T"
            expect(page.get_by_test_id("events")).to_contain_text("Viewed 24")
            page.get_by_test_id("events-pager").get_by_text("3", exact=True).click()
            expect(page.get_by_test_id("events")).to_contain_text("Viewed 00")

            page.screenshot(path=str(ARTIFACTS / "console-360-zh.png"), full_page=True)
            assert page.evaluate("Quasar.Lang.props.isoName") == "zh-CN"
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_text("Profile", exact=True)).to_be_visible()
            expect(page.get_by_text("Event timeline")).to_be_visible()
            page.wait_for_function("Quasar.Lang.props.isoName === 'en-US'")  # Quasar's own texts follow
            expect(page.get_by_test_id("relations")).to_contain_text("Scanned QR code")
            expect(page.get_by_test_id("orders")).to_contain_text("Paid")
            expect(page.get_by_text("coming soon").first).to_be_visible()
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_text("基本资料")).to_be_visible()
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_text("Profile", exact=True)).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "console-360.png"), full_page=True)

            page.goto(base + f"/console/customers/{s.absorbed}")  # merged away → the surviving customer
            expect(page).to_have_url(re.compile(rf"/console/customers/{s.wang}$"))
            expect(page.get_by_test_id("merges")).to_contain_text(s.absorbed)

            # A guide sees only own customers, in the console too.
            page.context.clear_cookies()
            page.goto(base + "/console/login")
            field(page, "username").fill("guide2")
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login").click()
            expect(page.get_by_text("共 1 位客户")).to_be_visible()
            expect(page.locator(".ag-cell", has_text="李*")).to_be_visible()
            page.goto(base + f"/console/customers/{s.zhang}")
            expect(page.get_by_test_id("not-found")).to_be_visible()
        finally:
            browser.close()
    rows = ctx.warehouse.fetch("SELECT 1")
    assert rows
    from siyu.services.brands import authenticate

    admin = authenticate(ctx, "admin", PASSWORD)
    assert admin is not None and admin.language == "en"  # the switch is stored on the user


def _login(page: Any, base: str, username: str) -> None:
    page.goto(base + "/console/login")
    field(page, "username").fill(username)
    field(page, "password").fill(PASSWORD)
    field(page, "password").press("Enter")


@pytest.mark.browser
def test_console_import_upload_mapping_progress_errors(ctx: Context, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    seed(ctx)
    upload = tmp_path / "会员.csv"
    upload.write_text(
        "手机号,姓名,城市\n13600136000,赵六,杭州\nnot-a-phone,坏号码,北京\n13500135000,钱七,上海\n", encoding="utf-8"
    )
    with live_server(create_app(ctx)) as base, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(20_000)
            _login(page, base, "admin")
            expect(page).to_have_url(re.compile(r"/console/customers$"))
            page.goto(base + "/console/import")
            expect(page.get_by_text("导入类型").first).to_be_visible()
            page.locator("[data-testid=upload] input[type=file]").set_input_files(str(upload))
            expect(page.get_by_text("字段映射 (自动识别，可修改)")).to_be_visible()
            expect(page.get_by_text("赵六")).to_be_visible()  # preview
            page.get_by_test_id("run-import").click()
            expect(page.get_by_test_id("job-status")).to_have_text("状态: 已完成", timeout=60_000)
            expect(page.get_by_test_id("error-report")).to_contain_text("not-a-phone")
            with page.expect_download() as download:
                page.get_by_text("下载错误报告").click()
            saved = tmp_path / "errors.csv"
            download.value.save_as(saved)
            assert "not-a-phone" in saved.read_text(encoding="utf-8-sig")
            page.screenshot(path=str(ARTIFACTS / "console-import.png"), full_page=True)
            page.goto(base + "/console/customers")
            expect(page.get_by_text("共 5 位客户")).to_be_visible()  # 3 seeded + 2 good rows
            expect(page.locator(".ag-cell", has_text="赵*")).to_be_visible()  # names masked in the list
        finally:
            browser.close()
