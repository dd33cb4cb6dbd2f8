"""Customer value metrics through the real HTTP API (guide scoping, errors) and the `siyu metrics` CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.services.context import Context
from tests.support.brand_days import day_start
from tests.support.live import live_server
from tests.test_metrics_value import DEMO_END, Ref, ref_aipl, ref_lifecycle, ref_rfm

DAY = DEMO_END.isoformat()


@pytest.fixture(scope="module")
def api(demo_ctx: Context) -> Iterator[tuple[str, Ref]]:
    with live_server(create_app(demo_ctx, with_console=False)) as base:
        yield base, Ref(demo_ctx, "demo")


def _auth(base: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _get(base: str, path: str, h: dict[str, str], **params: Any) -> Any:
    r = httpx.get(base + path, headers=h, params=params, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _guide_customers(ref: Ref, guide_id: str) -> set[str]:
    return ref.guide_customers(guide_id)


def test_admin_and_guide_see_their_figures(api: tuple[str, Ref]) -> None:
    base, ref = api
    admin = _auth(base, "admin", "siyu-admin")
    guide = _auth(base, "guide1", "siyu-guide")
    mine = _guide_customers(ref, "g01")
    assert 0 < len(mine) < 3000

    exp = ref_rfm(ref, DEMO_END)
    for h, keep in ((admin, exp.index), (guide, exp.index.intersection(sorted(mine)))):
        data = _get(base, "/api/metrics/rfm", h, as_of=DAY)
        sub = exp.loc[keep]
        got = {c["rfm_class"]: c["customers"] for c in data["classes"] if c["customers"]}
        assert got == sub["cls"].value_counts().to_dict()
        assert data["customers"] == len(sub) and math.isclose(data["monetary"], sub["m"].sum())
        assert math.isclose(data["means"]["r"], exp["r"].mean())  # the brand's split, also for a guide
        assert sum(s["customers"] for s in data["scores"]["m"]) == len(sub)

    page = _get(base, "/api/metrics/rfm/customers", guide, as_of=DAY, rfm_class="important_value", page_size=5)
    assert page["total"] == int((exp.loc[exp.index.intersection(sorted(mine)), "cls"] == "important_value").sum())
    # a guide's own customers include members of their groups (``guides`` lists relations, maybe another guide's)
    assert page["items"] and all(i["customer_id"] in mine for i in page["items"])
    assert [i["monetary"] for i in page["items"]] == sorted((i["monetary"] for i in page["items"]), reverse=True)

    stages = ref_aipl(ref, DEMO_END)
    data = _get(base, "/api/metrics/aipl", guide, as_of=DAY)
    exp_counts = stages[stages.index.isin(mine)].value_counts().to_dict()
    assert {s["stage"]: s["customers"] for s in data["stages"] if s["customers"]} == exp_counts

    page = _get(base, "/api/metrics/aipl/customers", guide, as_of=DAY, stage="I", page_size=500)
    assert {i["customer_id"] for i in page["items"]} == set(stages[(stages == "I") & stages.index.isin(mine)].index)

    d1 = date(2026, 9, 1)
    flow = _get(base, "/api/metrics/aipl/flow", guide, date1=d1.isoformat(), date2=DAY)
    a, b = ref_aipl(ref, d1), stages
    both = pd.concat([a.rename("f"), b.rename("t")], axis=1).fillna("none")
    both = both[both.index.isin(mine)]
    assert {(x["from_stage"], x["to_stage"]): x["customers"] for x in flow["links"]} == (
        both.groupby(["f", "t"]).size().to_dict()
    )

    life = ref_lifecycle(ref, DEMO_END, 30)
    data = _get(base, "/api/metrics/lifecycle", guide, as_of=DAY)
    assert {s["stage"]: s["customers"] for s in data["stages"] if s["customers"]} == (
        life[life.index.isin(mine)].value_counts().to_dict()
    )
    page = _get(base, "/api/metrics/lifecycle/customers", guide, as_of=DAY, stage="old_repurchased", page_size=500)
    repurchased = life[(life == "old_repurchased") & life.index.isin(mine)]
    assert {i["customer_id"] for i in page["items"]} == set(repurchased.index)

    j = ref.joined()
    joined = set(j[j < day_start(DEMO_END)].index)
    cells = _get(base, "/api/metrics/cohorts", guide, as_of=DAY)["cells"]
    sizes = {c["cohort_month"]: c["cohort_size"] for c in cells}
    assert sum(sizes.values()) == len(joined & mine)
    whole = _get(base, "/api/metrics/cohorts", admin, as_of=DAY)["cells"]
    assert sum({c["cohort_month"]: c["cohort_size"] for c in whole}.values()) == len(joined)


def test_definitions_and_errors(api: tuple[str, Ref]) -> None:
    base, _ = api
    h = _auth(base, "operator", "siyu-operator")
    keys = {d["key"] for d in _get(base, "/api/metrics/definitions", h)["items"]}
    assert {"rfm.class", "rfm.score", "aipl.stage", "aipl.flow", "lifecycle.stage", "cohorts.retention"} <= keys
    bad = [
        ("/api/metrics/rfm", {"as_of": "2026-13-01"}, "as_of"),
        ("/api/metrics/rfm", {"window_days": 0}, "window_days"),
        ("/api/metrics/rfm/customers", {"rfm_class": "vip"}, "rfm_class"),
        ("/api/metrics/rfm/customers", {"page_size": 9999}, "page_size"),
        ("/api/metrics/aipl", {"a_days": 0}, "a_days"),
        ("/api/metrics/aipl/flow", {"date1": DAY, "date2": "2026-01-01"}, "date1"),
        ("/api/metrics/lifecycle", {"new_days": -1}, "new_days"),
        ("/api/metrics/cohorts", {"basis": "weekly"}, "basis"),
    ]
    for path, params, field in bad:
        r = httpx.get(base + path, headers=h, params=params, timeout=60)
        assert r.status_code == 400, (path, r.text)
        assert field in r.text, (path, r.text)
    assert httpx.get(base + "/api/metrics/rfm").status_code == 401


def test_cli(demo_ctx: Context, monkeypatch: pytest.MonkeyPatch, api: tuple[str, Ref]) -> None:
    _, ref = api
    monkeypatch.setenv("SIYU_DATA_DIR", str(demo_ctx.settings.data_dir))
    runner = CliRunner()
    r = runner.invoke(cli_app, ["metrics", "rfm", "--brand", "demo", "--as-of", DAY, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    exp = ref_rfm(ref, DEMO_END)
    assert {c["rfm_class"]: c["customers"] for c in data["classes"]} == exp["cls"].value_counts().to_dict()
    r = runner.invoke(cli_app, ["metrics", "rfm", "--brand", "demo", "--as-of", DAY], terminal_width=200)
    assert r.exit_code == 0 and "important_value" in r.output and "重要价值客户" in r.output
    args = ["metrics", "lifecycle", "--brand", "demo", "--as-of", DAY, "--as-guide", "g01", "--json"]
    r = runner.invoke(cli_app, args)
    life = ref_lifecycle(ref, DEMO_END)
    mine = _guide_customers(ref, "g01")
    got = {s["stage"]: s["customers"] for s in json.loads(r.output)["stages"] if s["customers"]}
    assert got == life[life.index.isin(mine)].value_counts().to_dict()
    for cmd in (["aipl"], ["aipl-flow", "--date1", "2026-09-01"], ["cohorts", "--by-channel"], ["rfm-customers"]):
        r = runner.invoke(cli_app, ["metrics", *cmd, "--brand", "demo"], terminal_width=200)
        assert r.exit_code == 0, (cmd, r.output)
    r = runner.invoke(cli_app, ["metrics", "rfm", "--brand", "demo", "--as-of", "yesterday"])
    assert r.exit_code == 2 and "as_of" in r.output
    r = runner.invoke(cli_app, ["metrics", "rfm", "--brand", "nope"])
    assert r.exit_code == 2
