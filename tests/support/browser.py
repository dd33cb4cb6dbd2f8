"""Debian chromium for browser tests (never `playwright install`): presence check and launch flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip when chromium is missing locally; fail on CI, where .ci/run installs it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI: install the Debian 'chromium' package")
        pytest.skip(f"{CHROMIUM} is not installed")


def launch(playwright: Any) -> Any:
    """A headless Debian chromium browser (caller closes it)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def field(page: Any, testid: str) -> Any:
    """The native <input> of a Quasar field (the test id lands on the input or on its wrapper)."""
    return page.locator(f"[data-testid={testid}]").locator("xpath=descendant-or-self::input").first


def console_login(page: Any, base: str, username: str, password: str) -> None:
    """Log in to the console through its login form and wait for the landing page."""
    import re

    from playwright.sync_api import expect

    page.goto(base + "/console/login")
    field(page, "username").fill(username)
    field(page, "password").fill(password)
    page.get_by_test_id("login").click()
    expect(page).to_have_url(re.compile(r"/console/customers$"))


_CHART_TEXTS = """(testid) => {
  const el = document.querySelector(`[data-testid=${testid}] [_echarts_instance_]`);
  const chart = getElement(el.id.slice(1)).chart;
  const out = [];
  for (const d of chart.getZr().storage.getDisplayList()) {
    if (d.type !== 'tspan' || !d.style || !d.style.text) continue;
    const r = d.getBoundingRect().clone();
    if (d.transform) r.applyTransform(d.transform);
    out.push([d.style.text, r.x, r.x + r.width, chart.getWidth()]);
  }
  return out;
}"""


def chart_texts(page: Any, testid: str) -> list[tuple[str, float, float, float]]:
    """The texts an ECharts chart (inside the element with ``testid``) has drawn: (text, left, right, chart
    width) in canvas pixels — what a reader sees, clipping included (a label past the width is cut)."""
    return [tuple(t) for t in page.evaluate(_CHART_TEXTS, testid)]
