"""The console's WeCom settings page (/wecom/settings) in a real browser: an admin uploads WeCom's trusted-domain
verification file through the page, siyu serves its exact bytes at the web root and the API reports the same file
(with an audit entry), English, screenshots; deleting it through the page stops serving it; an operator sees the
file but no upload."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import audit, brands
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from tests.support.browser import console_login, launch, require_chromium
from tests.support.live import live_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PW = "s3cret-pass"
NAME = "WW_verify_Ab12Cd34Ef56Gh78.txt"


@pytest.mark.browser
def test_wecom_settings_page_uploads_the_verify_file(ctx: Context, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "boss", PW, Role.ADMIN)
    brands.create_user(ctx, "acme", "op", PW, Role.OPERATOR)
    key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    set_config(ctx, "acme", WeComConfig("wwlocal0000000001", "QDG6eK", key, secret="contact-secret"))
    upload = tmp_path / NAME
    upload.write_bytes(b"Ab12Cd34Ef56Gh78")
    with live_server(create_app(ctx)) as base, sync_playwright() as pw:
        assert httpx.get(f"{base}/{NAME}").status_code == 404
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            console_login(page, base, "boss", PW)
            page.goto(base + "/console/wecom/settings")
            expect(page.get_by_test_id("wecom-settings-title")).to_have_text("企业微信设置")
            expect(page.get_by_test_id("wecom-corp")).to_contain_text("wwlocal0000000001")
            expect(page.get_by_test_id("verify-current")).to_have_text("尚未上传校验文件")
            page.locator("[data-testid=verify-upload] input[type=file]").set_input_files(str(upload))
            expect(page.get_by_test_id("verify-current")).to_contain_text(NAME)
            served = httpx.get(f"{base}/{NAME}")
            assert (served.status_code, served.content) == (200, b"Ab12Cd34Ef56Gh78")
            api = httpx.get(f"{base}/api/sidebar/verify-file", auth=("boss", PW)).json()["file"]
            assert (api["name"], api["bytes"], api["set_by"]) == (NAME, 16, "boss")
            expect(page.get_by_test_id("verify-current")).to_contain_text(f"{api['bytes']} 字节")
            assert [(e["actor"], e["action"]) for e in audit.entries(ctx, "acme", "wecom.verify_file.set")] == [
                ("boss", "wecom.verify_file.set")
            ]
            page.screenshot(path=str(ARTIFACTS / "wecom-settings-zh.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("wecom-settings-title")).to_have_text("WeCom settings")
            expect(page.get_by_test_id("verify-current")).to_contain_text("16 bytes")
            page.screenshot(path=str(ARTIFACTS / "wecom-settings-en.png"), full_page=True)
            page.get_by_test_id("verify-clear").click()
            expect(page.get_by_test_id("verify-current")).to_have_text("No verification file uploaded yet")
            assert httpx.get(f"{base}/{NAME}").status_code == 404
            page.get_by_test_id("lang-switch").click()

            other = browser.new_page(viewport={"width": 1400, "height": 1000})
            console_login(other, base, "op", PW)
            other.goto(base + "/console/wecom/settings")
            expect(other.get_by_test_id("verify-current")).to_be_visible()
            expect(other.get_by_text("仅管理员可上传或删除校验文件")).to_be_visible()
            assert other.locator("[data-testid=verify-upload]").count() == 0
        finally:
            browser.close()
