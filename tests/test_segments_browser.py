"""The segments page (/console/segments) in a real browser: build a segment with the form, see the live count equal
the API's count, save it, see its members and the lookalike lift, switch language (own stores: the test saves)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.services.context import Context
from tests.support.browser import console_login, field, launch, require_chromium
from tests.support.live import live_server
from tests.support.stores import open_demo

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig

    c = open_demo(tmp_path / "data", DemoConfig(customers=1500))
    yield c
    c.close()


@pytest.mark.browser
def test_build_count_save_and_switch_language(seeded: Context) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=30_000)
    with live_server(create_app(seeded)) as base, sync_playwright() as pw:
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"}).json()
        h = {"Authorization": f"Bearer {token['token']}"}

        def api_count(definition: dict[str, Any]) -> int:
            r = httpx.post(f"{base}/api/segments/preview", headers=h, json={"definition": definition}, timeout=60)
            assert r.status_code == 200, r.text
            return int(r.json()["count"])

        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1800})
            page.set_default_timeout(30_000)
            console_login(page, base, "admin", "siyu-admin")
            page.goto(base + "/console/segments")
            expect(page.get_by_test_id("segments-title")).to_have_text("客户分群")

            # the form starts with "orders ≥ 1"; edit the value to 3 and the live count follows
            start = api_count({"kind": "orders", "op": "gte", "value": 1})
            expect(page.get_by_test_id("live-count")).to_have_text(f"{start:,}")
            value = field(page, "cond-0-0-value")
            value.fill("3")
            value.press("Tab")
            three = api_count({"kind": "orders", "op": "gte", "value": 3})
            assert three < start
            expect(page.get_by_test_id("live-count")).to_have_text(f"{three:,}")
            page.get_by_test_id("tab-json").click()
            json_box = page.locator("[data-testid=segment-json]").locator("xpath=descendant-or-self::textarea").first
            expect(json_box).to_have_value(re.compile(r'"value": 3'))
            page.get_by_test_id("tab-form").click()

            # a second condition in the group (AND): clicked ≥ 2 times in 7 days; then removed again
            page.get_by_test_id("add-condition-0").click()
            expect(page.get_by_test_id("cond-0-1")).to_be_visible()
            both = {
                "kind": "and",
                "conditions": [
                    {"kind": "orders", "op": "gte", "value": 3},
                    {"kind": "event", "event": "Message Clicked", "window_days": 7, "op": "gte", "value": 2},
                ],
            }
            expect(page.get_by_test_id("live-count")).to_have_text(f"{api_count(both):,}")
            page.get_by_test_id("cond-0-1-remove").click()
            expect(page.get_by_test_id("live-count")).to_have_text(f"{three:,}")

            field(page, "segment-name").fill("复购三次以上")
            page.get_by_test_id("save").click()
            expect(page.get_by_test_id("segments-table")).to_contain_text("复购三次以上")
            expect(page.get_by_test_id("segment-members-count-value")).to_have_text(f"{three:,}")
            listed = httpx.get(f"{base}/api/segments", headers=h).json()["items"]
            assert [s["member_count"] for s in listed if s["name"] == "复购三次以上"] == [three]

            page.get_by_test_id("lookalike-run").click()
            expect(page.get_by_test_id("lookalike-lift-value")).to_have_text(re.compile(r"^\d+\.\d\d$"))
            page.screenshot(path=str(ARTIFACTS / "segments-zh.png"), full_page=True)

            # JSON typed into the editor: the count follows, and the form shows it (one OR group of two rows)
            typed = {
                "kind": "or",
                "conditions": [
                    {"kind": "orders", "op": "gte", "value": 5},
                    {"kind": "channel", "channels": ["ch_store"]},
                ],
            }
            page.get_by_test_id("tab-json").click()
            json_box.fill(json.dumps(typed))
            expect(page.get_by_test_id("live-count")).to_have_text(f"{api_count(typed):,}")
            page.get_by_test_id("tab-form").click()
            expect(page.get_by_test_id("cond-0-1")).to_be_visible()
            expect(page.get_by_test_id("match-0")).to_contain_text("满足任一")

            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("segments-title")).to_have_text("Segments")
            expect(page.get_by_text("Segment builder")).to_be_visible()
            expect(page.get_by_test_id("live-count")).to_have_text(re.compile(r"^[\d,]+$"))
            page.screenshot(path=str(ARTIFACTS / "segments-en.png"), full_page=True)
            page.get_by_test_id("lang-switch").click()
            expect(page.get_by_test_id("segments-title")).to_have_text("客户分群")
        finally:
            browser.close()
