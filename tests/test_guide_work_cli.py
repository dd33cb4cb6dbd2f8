"""`siyu pool`, `siyu followups`, `siyu moments` and `siyu guide-kpis` on real stores: a lead without a WeCom
relation goes through the pool to a guide, who then sees the customer, records a follow-up and finds its reminder
in their inbox; errors name the field."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
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


def _ok(args: list[str]) -> str:
    r = runner.invoke(app, args, terminal_width=220)
    assert r.exit_code == 0, r.output
    return r.output


def test_pool_to_followup_through_the_cli(seeded: Seed) -> None:
    wang = seeded.wang
    r = runner.invoke(app, ["customers", "show", "acme", wang, "--as-guide", "g1"])
    assert r.exit_code == 2 and "not found" in r.output  # nobody's customer yet
    assert "added 1," in _ok(["pool", "add", "acme", "--unowned"])
    assert wang in _ok(["pool", "list", "acme", "--json"])
    r = runner.invoke(app, ["pool", "assign", "acme", "--rule", "alphabetical"])
    assert r.exit_code == 2 and "rule" in r.output
    assert "assigned 1" in _ok(["pool", "assign", "acme", "--rule", "round_robin", "--guide", "g1"])
    assert "王五" in _ok(["customers", "show", "acme", wang, "--as-guide", "g1"])
    r = runner.invoke(app, ["customers", "show", "acme", wang, "--as-guide", "g2"])
    assert r.exit_code == 2
    out = _ok(
        [
            "followups",
            "add",
            "acme",
            wang,
            "--kind",
            "call",
            "--content",
            "首次电话",
            "--next",
            "2099-01-01",
            "--stage",
            "初次接触",
            "--as-guide",
            "g1",
        ]
    )
    assert "reminder: open" in out
    r = runner.invoke(app, ["followups", "add", "acme", wang, "--kind", "fax", "--as-guide", "g1"])
    assert r.exit_code == 2 and "kind" in r.output
    assert "首次电话" in _ok(["followups", "list", "acme", "--as-guide", "g1", "--json"])
    assert "首次电话" not in _ok(["followups", "list", "acme", "--as-guide", "g2", "--json"])
    assert "首次电话" in _ok(["guide-kpis", "inbox", "acme", "--as-guide", "g1", "--json"])
    assert "assign" in _ok(["pool", "moves", "acme", "--customer-id", wang, "--json"])
    out = _ok(["followups", "settings", "acme", "--claim-limit", "3", "--windows", "20:00-21:00", "--json"])
    assert '"20:00-21:00"' in out and '"claim_limit": 3' in out
    r = runner.invoke(app, ["followups", "settings", "acme", "--windows", "9pm"])
    assert r.exit_code == 2 and "windows[0]" in r.output
    assert "back in the pool" in _ok(["pool", "release", "acme", wang, "--reason", "号码空号", "--as-guide", "g1"])
    r = runner.invoke(app, ["moments", "publish", "acme", "--title", "x", "--content", "y"])
    assert r.exit_code == 2 and "WeCom configuration" in r.output
