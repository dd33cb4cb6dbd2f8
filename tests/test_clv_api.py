"""CLV through the real HTTP API (fits, predictions scoped to a guide, validation, LTV/CAC, errors) and the
`siyu clv` CLI, on a freshly seeded demo brand."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.services.context import Context
from tests.support.live import api_login, live_server
from tests.support.scope import reachable_ids
from tests.support.stores import open_demo


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Context]]:
    from siyu.services.demo import DemoConfig

    ctx = open_demo(Path(tmp_path_factory.mktemp("clvapi")) / "data", DemoConfig(customers=1000))
    with live_server(create_app(ctx, with_console=False)) as base:
        yield base, ctx
    ctx.close()


def _get(base: str, path: str, h: dict[str, str], status: int = 200, **params: Any) -> Any:
    r = httpx.get(base + path, headers=h, params=params, timeout=120)
    assert r.status_code == status, r.text
    return r.json()


def _guide_customers(ctx: Context, guide_id: str) -> set[str]:
    """A guide's own customers (reachable: active relations and members of the groups they own)."""
    return reachable_ids(ctx, "demo", guide_id)


def test_fit_read_and_guide_scope(api: tuple[str, Context]) -> None:
    base, ctx = api
    admin = api_login(base, "admin", "siyu-admin")
    guide = api_login(base, "guide1", "siyu-guide")
    r = httpx.post(f"{base}/api/clv/fits", headers=guide, json={}, timeout=60)
    assert r.status_code == 403
    r = httpx.post(f"{base}/api/clv/fits", headers=admin, json={"model": "mbgnbd", "months": 6}, timeout=120)
    assert r.status_code == 200, r.text
    fit = r.json()
    assert fit["status"] == "done" and fit["model"] == "mbgnbd" and set(fit["params"]) == {"r", "alpha", "a", "b"}
    stored = ctx.warehouse.fetch("SELECT customer_id, clv, p_alive FROM clv_predictions WHERE brand_id = 'demo'")
    assert len(stored) == fit["customers"]
    fits = _get(base, "/api/clv/fits", admin)
    assert fits["current"]["id"] == fit["id"] and fits["items"][0]["id"] == fit["id"]
    assert _get(base, f"/api/clv/fits/{fit['id']}", admin)["log_likelihood"] == fit["log_likelihood"]

    page = _get(base, "/api/clv/predictions", admin, page_size=500)
    assert page["total"] == len(stored) and len(page["items"]) == min(500, len(stored))
    top = max(stored, key=lambda s: s[1])
    assert page["items"][0]["customer_id"] == top[0] and page["items"][0]["clv"] == pytest.approx(top[1])

    mine = _guide_customers(ctx, "g01")
    gp = _get(base, "/api/clv/predictions", guide, page_size=500)
    expect = {s[0] for s in stored} & mine
    assert gp["total"] == len(expect) > 0 and {i["customer_id"] for i in gp["items"]} == expect
    other = next(s[0] for s in stored if s[0] not in mine)
    _get(base, f"/api/clv/customers/{other}", guide, status=404)
    one = _get(base, f"/api/clv/customers/{other}", admin)
    assert one["customer_id"] == other and one["fit"]["id"] == fit["id"]
    own = next(iter(expect))
    assert _get(base, f"/api/clv/customers/{own}", guide)["customer_id"] == own
    ov = _get(base, "/api/clv/overview", guide)
    assert ov["totals"]["customers"] == len(expect)
    at_risk = _get(base, "/api/clv/predictions", admin, max_p_alive=0.3, page_size=1)
    assert at_risk["total"] == sum(1 for s in stored if s[2] <= 0.3)

    _get(base, "/api/clv/validation", guide, status=403)
    _get(base, "/api/clv/ltv-cac", guide, status=403, by="channel")
    rows = _get(base, "/api/clv/ltv-cac", guide, by="guide")["rows"]
    assert [r["guide_id"] for r in rows] == ["g01"]
    ch = _get(base, "/api/clv/ltv-cac", admin, by="channel")
    assert ch["key"] == "channel_id" and all("clv_cac" in r for r in ch["rows"])


def test_errors_name_the_field(api: tuple[str, Context]) -> None:
    base, _ = api
    admin = api_login(base, "admin", "siyu-admin")
    for body, field in (
        ({"model": "nbd"}, "model"),
        ({"calibration_end": "31/10/2026"}, "calibration_end"),
        ({"months": 500}, "months"),
        ({"discount_rate": 11}, "discount_rate"),
    ):
        r = httpx.post(f"{base}/api/clv/fits", headers=admin, json=body, timeout=60)
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    for path, params, field in (
        ("/api/clv/predictions", {"page_size": 1000}, "page_size"),
        ("/api/clv/predictions", {"sort": "phone"}, "sort"),
        ("/api/clv/overview", {"bins": 1000}, "bins"),
        ("/api/clv/fits", {"limit": 0}, "limit"),
        ("/api/clv/validation", {"calibration_end": "2026-10-31"}, "holdout_end"),
        ("/api/clv/ltv-cac", {"by": "store"}, "by"),
    ):
        assert _get(base, path, admin, status=400, **params)["field"] == field
    assert _get(base, "/api/clv/fits/nope", admin, status=404)["field"] == "fit_id"
    assert httpx.get(f"{base}/api/clv/predictions").status_code == 401


def test_background_fit_and_validation(api: tuple[str, Context]) -> None:
    base, _ = api
    admin = api_login(base, "admin", "siyu-admin")
    r = httpx.post(f"{base}/api/clv/fits", headers=admin, json={"model": "bgnbd", "wait": False}, timeout=60)
    assert r.status_code == 200, r.text
    fit_id = r.json()["id"]
    assert r.json()["status"] in ("running", "done")
    deadline = time.time() + 90
    while time.time() < deadline:
        f = _get(base, f"/api/clv/fits/{fit_id}", admin)
        if f["status"] != "running":
            break
        time.sleep(0.3)
    assert f["status"] == "done", f
    assert _get(base, "/api/clv/fits", admin)["current"]["id"] == fit_id
    v = _get(base, "/api/clv/validation", admin, model="pareto_nbd")
    assert v["model"] == "pareto_nbd" and v["by_frequency"] and v["tracking"][-1]["holdout"]
    assert sum(r["customers"] for r in v["by_frequency"]) == v["errors"]["customers"]


def test_cli(api: tuple[str, Context], monkeypatch: pytest.MonkeyPatch) -> None:
    _, ctx = api
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    r = runner.invoke(cli_app, ["clv", "fit", "--brand", "demo", "--months", "3", "--json"])
    assert r.exit_code == 0, r.output
    fit = json.loads(r.output)
    assert fit["months"] == 3 and fit["status"] == "done" and fit["created_by"] == "cli"
    r = runner.invoke(cli_app, ["clv", "fit", "--brand", "demo", "--model", "pareto_nbd"], terminal_width=200)
    assert r.exit_code == 0 and "pareto_nbd" in r.output and "beta" in r.output and "log-likelihood" in r.output
    r = runner.invoke(cli_app, ["clv", "predict", "--brand", "demo", "--page-size", "5", "--json"])
    page = json.loads(r.output)
    assert page["fit"]["model"] == "pareto_nbd" and len(page["items"]) == 5
    first = page["items"][0]["customer_id"]
    r = runner.invoke(cli_app, ["clv", "predict", "--brand", "demo", "--customer", first, "--json"])
    assert json.loads(r.output)["clv"] == pytest.approx(page["items"][0]["clv"])
    r = runner.invoke(cli_app, ["clv", "predict", "--brand", "demo", "--as-guide", "g01", "--json"])
    assert {i["customer_id"] for i in json.loads(r.output)["items"]} <= _guide_customers(ctx, "g01")
    r = runner.invoke(cli_app, ["clv", "validate", "--brand", "demo"], terminal_width=200)
    assert r.exit_code == 0 and "7+" in r.output and "holdout_error_pct" in r.output
    r = runner.invoke(cli_app, ["clv", "ltv-cac", "--brand", "demo", "--by", "campaign"], terminal_width=200)
    assert r.exit_code == 0 and "clv_cac" in r.output
    r = runner.invoke(cli_app, ["clv", "fit", "--brand", "demo", "--calibration-end", "yesterday"])
    assert r.exit_code == 2 and "calibration_end" in r.output
    r = runner.invoke(cli_app, ["clv", "fit", "--brand", "nope"])
    assert r.exit_code == 2
