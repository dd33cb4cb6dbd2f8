"""`siyu brands`: the command the "brand does not exist" errors point to."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings

runner = CliRunner()


def test_create_list_and_the_error_that_points_here(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    missing = runner.invoke(app, ["customers", "search", "acme", "x"])
    assert missing.exit_code == 2 and "siyu brands create" in missing.output

    r = runner.invoke(app, ["brands", "create", "acme", "Acme 美妆"])
    assert r.exit_code == 0, r.output
    assert "acme" in runner.invoke(app, ["brands", "list"]).output
    assert runner.invoke(app, ["customers", "search", "acme", "x"]).exit_code == 0

    again = runner.invoke(app, ["brands", "create", "acme", "again"])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["brands", "create", "Bad Id", "x"])
    assert bad.exit_code == 2 and "lowercase" in bad.output
