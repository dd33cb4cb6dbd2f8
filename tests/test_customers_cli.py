"""`siyu customers search|show` and `siyu users create` on real stores."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
from siyu.services import brands
from siyu.services.context import Context
from tests.test_customers_api import Seed, seed

runner = CliRunner()


@pytest.fixture
def seeded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Seed:
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    ctx = Context.open(settings)
    try:
        return seed(ctx)
    finally:
        ctx.close()


def test_search_and_show(seeded: Seed) -> None:
    r = runner.invoke(app, ["customers", "search", "acme", "13800138000"])
    assert r.exit_code == 0, r.output
    assert "张三" in r.output and seeded.zhang in r.output and "李四" not in r.output
    r = runner.invoke(app, ["customers", "search", "acme", "--as-guide", "g2"])
    assert r.exit_code == 0 and "李四" in r.output and "张三" not in r.output
    r = runner.invoke(app, ["customers", "show", "acme", seeded.zhang, "--events-limit", "5"], terminal_width=200)
    assert r.exit_code == 0, r.output
    for text in ("张三", "wm_zhang", "王导购", "VIP会员", "o1", "Viewed 24", "page 1/5"):
        assert text in r.output, text
    r = runner.invoke(app, ["customers", "show", "acme", seeded.absorbed], terminal_width=200)
    assert r.exit_code == 0 and f"merged into {seeded.wang}" in r.output
    r = runner.invoke(app, ["customers", "show", "acme", seeded.zhang, "--as-guide", "g2"])
    assert r.exit_code == 2 and "not found" in r.output
    r = runner.invoke(app, ["customers", "search", "acme", "--page-size", "999"])
    assert r.exit_code == 2 and "page_size" in r.output


def test_users_create(seeded: Seed, settings: Settings) -> None:
    r = runner.invoke(
        app,
        ["users", "create", "acme", "g3", "--role", "guide", "--guide-id", "g3"],
        input="pass-word-1\npass-word-1\n",
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["users", "create", "acme", "nog", "--role", "guide"], env={"SIYU_NEW_PASSWORD": "pass-word-1"}
    )
    assert r.exit_code == 2 and "guide_id" in r.output
    ctx = Context.open(settings)
    try:
        user = brands.authenticate(ctx, "g3", "pass-word-1")
        assert user is not None and user.role.value == "guide" and user.guide_id == "g3"
        assert brands.authenticate(ctx, "nog", "pass-word-1") is None
    finally:
        ctx.close()
