"""The messaging page (/console/messaging) in a real browser: status counts equal the API's, a dead letter is
re-sent with its button, the provider form saves (the secret never shown), English switch, a guide's view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import messaging
from siyu.services.brands import User
from siyu.services.context import Context
from tests.sms_server import sms_server
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server
from tests.support.stores import open_demo

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def fresh_ctx(tmp_path: Path) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig

    c = open_demo(tmp_path / "data", DemoConfig(customers=200))
    yield c
    c.close()


def _headers(base: str, username: str, password: str) -> dict[str, str]:
    token = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password}).json()
    return {"Authorization": f"Bearer {token['token']}"}


@pytest.mark.browser
def test_messaging_page(fresh_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")  # the test drives deliveries
    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=60_000)
    ops = User(0, "demo", "ops", "ops", Role.ADMIN, None, "zh")
    with sms_server() as vendor, live_server(create_app(fresh_ctx)) as base, sync_playwright() as pw:
        messaging.set_provider(
            fresh_ctx,
            ops,
            "sms",
            "aliyun",
            {
                "access_key_id": "testid",
                "access_key_secret": "testsecret",
                "sign_name": "思域测试",
                "endpoint": vendor.url,
            },
        )
        for phone, template in (
            ("13800138000", "SMS_71390007"),
            ("13900139000", "SMS_71390007"),
            ("13700137000", "SMS_404"),
        ):
            messaging.send(
                fresh_ctx,
                ops,
                messaging.SendRequest(channel="sms", recipient=phone, template=template, params={"customer": "x"}),
                queue=False,
            )
        messaging.process_due(fresh_ctx)
        admin = _headers(base, "admin", "siyu-admin")
        api = httpx.get(f"{base}/api/messaging/outbox", headers=admin).json()
        assert api["by_status"]["sent"] == 2 and api["by_status"]["dead"] == 1
        dead_id = httpx.get(f"{base}/api/messaging/dead-letters", headers=admin).json()["items"][0]["id"]

        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.set_default_timeout(60_000)
            console_login(page, base, "admin", "siyu-admin")
            page.goto(base + "/console/messaging")
            expect(page.get_by_test_id("messaging-title")).to_have_text("消息发送：短信 / 邮件 / Webhook")
            expect(page.get_by_test_id("kpi-sent-value")).to_have_text(str(api["by_status"]["sent"]))
            expect(page.get_by_test_id("kpi-dead-value")).to_have_text(str(api["by_status"]["dead"]))
            expect(page.get_by_test_id("messaging-chart").locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("outbox-table")).to_contain_text("138****8000")  # recipients masked
            expect(page.get_by_test_id("outbox-table")).to_contain_text("已发送")
            page.screenshot(path=str(ARTIFACTS / "messaging-outbox-zh.png"), full_page=True)

            page.get_by_test_id("tab-dead").click()
            expect(page.get_by_test_id(f"dead-{dead_id}")).to_contain_text("isv.SMS_TEMPLATE_ILLEGAL")
            page.screenshot(path=str(ARTIFACTS / "messaging-dead-zh.png"), full_page=True)
            page.get_by_test_id(f"resend-{dead_id}").click()
            expect(page.get_by_test_id("no-dead")).to_be_visible()
            r = httpx.get(f"{base}/api/messaging/outbox/{dead_id}", headers=admin).json()
            assert r["status"] == "queued" and r["attempts"] == 0

            page.get_by_test_id("tab-providers").click()
            expect(field(page, "sms-access_key_id")).to_have_value("testid")
            expect(field(page, "sms-access_key_secret")).to_have_value("")
            assert "testsecret" not in page.content()
            field(page, "sms-sign_name").fill("新签名")
            page.get_by_test_id("sms-save").click()
            expect(page.get_by_text("已保存")).to_be_visible()
            shown = httpx.get(f"{base}/api/messaging/providers", headers=admin).json()
            assert shown["sms"]["sign_name"] == "新签名" and shown["sms"]["access_key_secret_set"] is True
            field(page, "cap-value").fill("3")
            page.get_by_test_id("cap-save").click()
            expect(page.get_by_text("已保存").last).to_be_visible()
            assert httpx.get(f"{base}/api/messaging/providers", headers=admin).json()["marketing_daily_cap"] == 3
            page.screenshot(path=str(ARTIFACTS / "messaging-providers-zh.png"), full_page=True)

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("messaging-title")).to_have_text("Messaging: SMS / email / webhooks")
            expect(page.get_by_test_id("kpi-sent-value")).to_have_text("2")
            page.screenshot(path=str(ARTIFACTS / "messaging-outbox-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()

            guide = browser.new_page(viewport={"width": 1400, "height": 1000})
            console_login(guide, base, "guide1", "siyu-guide")
            guide.goto(base + "/console/messaging")
            expect(guide.get_by_test_id("kpi-sent-value")).to_have_text("0")  # guides see only their own
            expect(guide.get_by_test_id("tab-providers")).to_have_count(0)
        finally:
            browser.close()
