"""The channel codes page (/console/wecom/codes) in a real browser: create a code with two guides through the form,
see its QR, see the stats move after a simulated scan (figures checked against the API), switch language."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server
from tests.wecom_server import WeComServer, actions, running, seed

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"


@pytest.mark.browser
def test_codes_page_create_qr_stats_language(ctx: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=30_000)
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
    srv = WeComServer(corpid=CORP)
    seed(srv.company, guides=2, contacts_per_guide=1)
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES "
            "('acme','g1','王导购','guide0001'), ('acme','g2','李导购','guide0002')"
        )
        cur.execute("INSERT INTO channels VALUES ('acme','ch_store','门店','offline')")
    with running(srv) as wecom, live_server(create_app(ctx)) as base, sync_playwright() as pw:
        set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=wecom))
        srv.connect_callbacks(f"{base}/api/wecom/callback/acme", TOKEN, KEY)
        tok = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "s3cret-pass"}).json()
        h = {"Authorization": f"Bearer {tok['token']}"}
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(30_000)
            console_login(page, base, "admin", "s3cret-pass")
            page.goto(base + "/console/wecom/codes")
            expect(page.get_by_test_id("codes-title")).to_have_text("渠道活码")
            expect(page.get_by_test_id("codes-none")).to_be_visible()

            page.get_by_test_id("codes-new").get_by_text("新建活码").click()
            field(page, "code-name").fill("门店收银台")
            page.get_by_test_id("code-channel").click()
            page.get_by_role("option", name="门店 (ch_store)").click()
            page.get_by_test_id("code-guides").click()
            page.get_by_role("option", name="王导购 (g1)").click()
            page.get_by_role("option", name="李导购 (g2)").click()
            page.keyboard.press("Escape")
            field(page, "code-cap").fill("1")
            page.get_by_test_id("code-create").click()

            expect(page.get_by_test_id("code-qr")).to_be_visible()
            codes = httpx.get(f"{base}/api/wecom/codes", headers=h).json()["items"]
            assert len(codes) == 1 and [g["cap"] for g in codes[0]["guides"]] == [1, 1]
            code = codes[0]
            assert srv.company.contact_ways[code["config_id"]]["user"] == ["guide0001", "guide0002"]
            expect(page.get_by_test_id("code-state")).to_contain_text(code["state"])
            expect(page.get_by_test_id("code-adds-value")).to_have_text("0")
            page.screenshot(path=str(ARTIFACTS / "wecom-codes-created-zh.png"), full_page=True)

            _, ext, _, resp = actions.scan(srv, code["config_id"])  # a simulated customer scans the code
            assert resp is not None and resp.text == "success"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                st = httpx.get(f"{base}/api/wecom/codes/{code['id']}/stats", headers=h).json()
                adds = httpx.get(f"{base}/api/wecom/codes/{code['id']}/adds", headers=h).json()["items"]
                if st["adds"] == 1 and adds and adds[0]["tag"] != "pending":
                    break
                time.sleep(0.1)
            assert st["adds"] == 1 and adds[0]["welcome"] == "sent"
            page.reload()
            expect(page.get_by_test_id("code-adds-value")).to_have_text(str(st["adds"]))
            expect(page.get_by_test_id("code-net-value")).to_have_text(str(st["net"]))
            expect(page.get_by_test_id("code-chart").locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("code-adds-table")).to_contain_text(ext)
            expect(page.get_by_test_id("code-adds-table")).to_contain_text("已发送")  # the welcome went out
            expect(page.get_by_test_id("code-showing")).to_contain_text("guide0002")  # g1 reached the cap of 1
            page.screenshot(path=str(ARTIFACTS / "wecom-codes-after-scan-zh.png"), full_page=True)

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("codes-title")).to_have_text("Channel codes")
            expect(page.get_by_test_id("code-adds-value")).to_have_text("1")
            expect(page.get_by_text("Lost: customer deleted").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "wecom-codes-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("codes-title")).to_have_text("渠道活码")
        finally:
            browser.close()
