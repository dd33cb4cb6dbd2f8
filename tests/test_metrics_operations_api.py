"""/api/metrics/{reachable,asset-statement,performance,performance/change,funnel,kpis} with guide scope, and the
`siyu metrics reachable|assets|performance|funnel|kpis` commands, on the demo brand."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.demo.seed import ensure_logins
from siyu.services.metrics import operations as ops
from tests.support.live import live_server
from tests.support.scope import reachable_ids

BRAND = "demo"
ADMIN = User(0, BRAND, "t", "t", Role.ADMIN, None, "zh")
OUTS = ("lost_by_customer", "deleted_by_guide", "moved_out", "left_group", "lost_other")


def _own_customers(ctx: Context, guide_id: str) -> set[str]:
    """A guide's reachable customers, from the raw tables (what a guide user may see)."""
    return reachable_ids(ctx, BRAND, guide_id)


@pytest.fixture(scope="module")
def api(demo_ctx: Context) -> Iterator[str]:
    ensure_logins(demo_ctx, BRAND)
    with live_server(create_app(demo_ctx, with_console=False)) as base:
        yield base


def _h(base: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _get(base: str, path: str, h: dict[str, str], **params: Any) -> Any:
    r = httpx.get(f"{base}/api/metrics/{path}", params=params, headers=h, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_api_guide_sees_only_own_customers(api: str, demo_ctx: Context) -> None:
    admin, guide = _h(api, "admin", "siyu-admin"), _h(api, "guide1", "siyu-guide")
    own = _own_customers(demo_ctx, "g01")
    assert own
    # 客群资产数 on the last data day: a guide's own active contacts are exactly what they may count
    ra, rg = _get(api, "reachable", admin), _get(api, "reachable", guide)
    assert rg["as_of"] == ra["as_of"] == "2026-10-31"
    assert rg["brand"] == len(own) < ra["brand"]
    g01 = {g["guide_id"]: g["reachable"] for g in rg["guides"]}
    assert g01["g01"] == len(own)
    admin_guides = {g["guide_id"]: g["reachable"] for g in ra["guides"]}
    assert all(g01[k] <= admin_guides[k] for k in g01) and sum(g01.values()) < sum(admin_guides.values())
    # the asset statement closes on the same customers and balances
    st = _get(api, "asset-statement", guide, by="guide")
    assert st["totals"]["closing"] == sum(g01.values())
    for r in st["rows"]:
        assert r["opening"] + r["acquired"] + r["moved_in"] - sum(r[c] for c in OUTS) == r["closing"]
    brand = _get(api, "asset-statement", guide)
    assert brand["totals"]["closing"] == len(own)
    # performance: every scoped figure is at most the admin's
    pg, pa = _get(api, "performance", guide), _get(api, "performance", admin)
    assert pg["rows"][0]["reachable"] == len(own)
    for k in ("reachable", "delivered", "bought", "gmv"):
        assert pg["rows"][0][k] < pa["rows"][0][k]
    ch = _get(api, "performance/change", guide, by="store")
    for r in ch["rows"]:
        assert math.fsum(r[e] for e in ch["effects"]) == pytest.approx(r["delta"], abs=1e-6)
    fg, fa = _get(api, "funnel", guide), _get(api, "funnel", admin)
    assert 0 < fg["rows"][0]["added"] < fa["rows"][0]["added"]
    assert fa["bands"]["service_rate"] == [0.4, 0.5]
    kg = _get(api, "kpis", guide)
    assert kg["interaction"][0]["reachable"] <= len(own) + 1 and kg["loss"][0]["unit"] == BRAND


def test_api_errors(api: str) -> None:
    admin = _h(api, "admin", "siyu-admin")
    for path, params, field in (
        ("asset-statement", {"by": "region"}, "by"),
        ("asset-statement", {"start": "2026-10-31", "end": "2026-10-01"}, "start"),
        ("reachable", {"as_of": "31.10.2026"}, "as_of"),
        ("performance/change", {"prev_end": "x"}, "prev_end"),
        ("funnel", {"by": "touchpoint"}, "by"),
        ("kpis", {"end": "2026-13-01"}, "end"),
    ):
        r = httpx.get(f"{api}/api/metrics/{path}", params=params, headers=admin, timeout=60)
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert httpx.get(f"{api}/api/metrics/reachable", timeout=60).status_code == 401


def _run(args: list[str], ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    return CliRunner().invoke(cli_app, ["metrics", *args], terminal_width=200)


def test_cli(demo_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    period = ["--start", "2026-09-01", "--end", "2026-09-30"]
    r = _run(["assets", "--brand", BRAND, *period, "--by", "store", "--json"], demo_ctx, monkeypatch)
    assert r.exit_code == 0, r.output
    want = ops.asset_statement(demo_ctx, ADMIN, "2026-09-01", "2026-09-30", "store").as_dict()
    assert json.loads(r.output)["rows"] == want["rows"]
    r = _run(["assets", "--brand", BRAND, *period], demo_ctx, monkeypatch)
    closing = ops.asset_statement(demo_ctx, ADMIN, "2026-09-01", "2026-09-30").totals()["closing"]
    assert r.exit_code == 0 and "用户资产表" in r.output and f" {closing} " in r.output
    reach = ops.reachable(demo_ctx, ADMIN)
    r = _run(["reachable", "--brand", BRAND], demo_ctx, monkeypatch)
    assert r.exit_code == 0 and f"brand {reach.brand:,}" in r.output and "王芳" in r.output
    r = _run(["reachable", "--brand", BRAND, "--as-guide", "g01", "--json"], demo_ctx, monkeypatch)
    assert r.exit_code == 0 and json.loads(r.output)["brand"] == len(_own_customers(demo_ctx, "g01"))
    r = _run(["performance", "--brand", BRAND, *period, "--change", "--json"], demo_ctx, monkeypatch)
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)["rows"][0]
    assert math.fsum(row[f"{f}_effect"] for f in ("reachable", "delivery_rate", "conversion_rate", "order_value")) == (
        pytest.approx(row["delta"], abs=1e-6)
    )
    r = _run(["performance", "--brand", BRAND, "--by", "guide"], demo_ctx, monkeypatch)
    assert r.exit_code == 0 and "g12" in r.output and "delivery_rate" in r.output
    r = _run(["funnel", "--brand", BRAND, "--by", "channel"], demo_ctx, monkeypatch)
    assert r.exit_code == 0 and "ch_parcel" in r.output and "lead_in_rate" in r.output
    r = _run(["kpis", "--brand", BRAND, "--json"], demo_ctx, monkeypatch)
    assert r.exit_code == 0 and {a["channel_id"] for a in json.loads(r.output)["add_rates"]} >= {"ch_parcel"}
    r = _run(["assets", "--brand", BRAND, "--by", "region"], demo_ctx, monkeypatch)
    assert r.exit_code == 2 and "by" in r.output
