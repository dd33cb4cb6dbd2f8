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
