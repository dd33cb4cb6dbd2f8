"""Rewards, points and engagement through the real HTTP API (uvicorn on a random port): operators create and
grant, errors name the field, stock conflicts are 409, guides read only their own customers and cannot change
anything; and the `siyu rewards` / `siyu points` CLI."""

from __future__ import annotations

import json
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

    ctx = open_demo(Path(tmp_path_factory.mktemp("rewardsapi")) / "data", DemoConfig(customers=300))
    with live_server(create_app(ctx, with_console=False)) as base:
        yield base, ctx
    ctx.close()


def _call(base: str, method: str, path: str, h: dict[str, str], status: int = 200, **kw: Any) -> Any:
    r = httpx.request(method, base + path, headers=h, timeout=60, **kw)
    assert r.status_code == status, (path, r.status_code, r.text)
    return r.json() if r.content else None


def _guide_customers(ctx: Context, guide_id: str) -> list[str]:
    """A guide's own customers (reachable: active relations and members of the groups they own), sorted."""
    return sorted(reachable_ids(ctx, "demo", guide_id))


def test_operator_flow_and_guide_scope(api: tuple[str, Context]) -> None:
    base, ctx = api
    op = api_login(base, "operator", "siyu-operator")
    guide = api_login(base, "guide1", "siyu-guide")
    mine, others = _guide_customers(ctx, "g01"), _guide_customers(ctx, "g02")
    others = [c for c in others if c not in mine]
    assert mine and others

    bad = _call(
        base, "POST", "/api/rewards", op, 400, json={"name": "x", "kind": "coupon", "config": {"face_value": -1}}
    )
    assert bad["field"] == "config.face_value"
    _call(base, "POST", "/api/rewards", guide, 403, json={"name": "x", "kind": "physical"})
    body = {"id": "cup", "name": "马克杯", "kind": "physical", "stock": 1, "unit_cost": 25}
    assert _call(base, "POST", "/api/rewards", op, 201, json=body)["stock_left"] == 1
    body = {"id": "c10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 3}
    _call(base, "POST", "/api/rewards", op, 201, json=body)

    g_mine = _call(
        base, "POST", "/api/rewards/cup/grant", op, 201, json={"customer_id": mine[0], "idempotency_key": "k1"}
    )
    again = _call(
        base, "POST", "/api/rewards/cup/grant", op, 201, json={"customer_id": mine[0], "idempotency_key": "k1"}
    )
    assert again["grant_id"] == g_mine["grant_id"]
    out = _call(
        base, "POST", "/api/rewards/cup/grant", op, 409, json={"customer_id": others[0], "idempotency_key": "k2"}
    )
    assert "out of stock" in out["error"] and out["field"] == "reward_id"
    _call(base, "POST", "/api/rewards/cup/top-up", op, json={"amount": 1})
    g_other = _call(
        base, "POST", "/api/rewards/cup/grant", op, 201, json={"customer_id": others[0], "idempotency_key": "k2"}
    )
    _call(
        base,
        "POST",
        "/api/rewards/c10/grant",
        op,
        404,
        json={"customer_id": "no-such-customer", "idempotency_key": "k3"},
    )

    # the guide sees only their own customer's grant, in lists and one by one
    listed = _call(base, "GET", "/api/rewards/grants", guide)
    assert [g["grant_id"] for g in listed["items"]] == [g_mine["grant_id"]]
    assert _call(base, "GET", "/api/rewards/grants", op)["total"] == 2
    _call(base, "GET", f"/api/rewards/grants/{g_other['grant_id']}", guide, 404)
    addr = {"name": "张三", "phone": "13800138000", "province": "浙江省", "city": "杭州市", "district": "西湖区"}
    bad = _call(base, "POST", f"/api/rewards/grants/{g_mine['grant_id']}/address", guide, 400, json={"address": addr})
    assert bad["field"] == "address.detail"
    addr["detail"] = "文三路 90 号"
    _call(base, "POST", f"/api/rewards/grants/{g_other['grant_id']}/address", guide, 404, json={"address": addr})
    assert (
        _call(base, "POST", f"/api/rewards/grants/{g_mine['grant_id']}/address", guide, json={"address": addr})[
            "status"
        ]
        == "to_ship"
    )
    _call(
        base,
        "POST",
        f"/api/rewards/grants/{g_mine['grant_id']}/ship",
        guide,
        403,
        json={"carrier": "SF", "tracking_no": "1"},
    )
    _call(
        base,
        "POST",
        f"/api/rewards/grants/{g_mine['grant_id']}/ship",
        op,
        json={"carrier": "顺丰", "tracking_no": "SF1"},
    )
    ful = _call(base, "GET", "/api/rewards/fulfilment", op, params={"status": "shipped"})
    assert [g["tracking_no"] for g in ful["items"]] == ["SF1"]
    out = _call(base, "POST", f"/api/rewards/grants/{g_mine['grant_id']}/claw-back", op, 409, json={"reason": "x"})
    assert "shipped" in out["error"]
    assert _call(base, "GET", "/api/rewards/cost", op, params={"source": "manual"})["cost"] == pytest.approx(50)

    # points: guide reads own customers only; spending more than the balance is a clear 409
    _call(base, "POST", f"/api/points/{mine[0]}/earn", op, 201, json={"points": 120, "source": "test", "ref": "r1"})
    _call(base, "POST", f"/api/points/{mine[0]}/earn", guide, 403, json={"points": 1})
    short = _call(base, "POST", f"/api/points/{mine[0]}/spend", op, 409, json={"points": 500, "source": "order"})
    assert short["field"] == "points" and "120" in short["error"]
    _call(base, "POST", f"/api/points/{mine[0]}/spend", op, 201, json={"points": 20, "source": "order", "ref": "o1"})
    assert _call(base, "GET", f"/api/points/{mine[0]}", guide)["balance"] == 100
    entries = _call(base, "GET", f"/api/points/{mine[0]}/ledger", guide)["items"]
    assert [(e["kind"], e["delta"], e["source"], e["ref"]) for e in entries] == [
        ("spend", -20, "order", "o1"),
        ("earn", 120, "test", "r1"),
    ]
    _call(base, "GET", f"/api/points/{others[0]}", guide, 404)

    # engagement: a quiz and tiers through the API
    quiz = {
        "kind": "quiz",
        "name": "问答",
        "id": "qz",
        "config": {
            "questions": [{"id": "q1", "text": "1+1?", "options": ["1", "2"], "answer": 1}],
            "points_per_correct": 5,
        },
    }
    _call(base, "POST", "/api/engagement/activities", op, 201, json=quiz)
    assert "answer" not in _call(base, "GET", "/api/engagement/activities/qz/quiz", guide)["questions"][0]
    r = _call(
        base, "POST", "/api/engagement/activities/qz/answers", op, json={"customer_id": mine[0], "answers": {"q1": 1}}
    )
    assert r["points"] == 5
    _call(
        base,
        "POST",
        "/api/engagement/activities/qz/answers",
        op,
        409,
        json={"customer_id": mine[0], "answers": {"q1": 1}},
    )
    scheme = {"tiers": [{"key": "base", "name": "普通"}, {"key": "vip", "name": "VIP", "min_points": 100}]}
    _call(base, "PUT", "/api/engagement/tiers/scheme", guide, 403, json=scheme)
    _call(base, "PUT", "/api/engagement/tiers/scheme", op, json=scheme)
    assert _call(base, "POST", "/api/engagement/tiers/recompute", op, json={})["members"] >= 1
    assert _call(base, "GET", f"/api/engagement/tiers/{mine[0]}", guide)["tier"] == "vip"  # 125 earned
    _call(base, "GET", f"/api/engagement/tiers/{others[0]}", guide, 404)


def test_cli(api: tuple[str, Context], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, ctx = api
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    spec = tmp_path / "r.json"
    spec.write_text(
        json.dumps({"id": "cli5", "name": "5元券", "kind": "coupon", "config": {"face_value": 5}, "stock": 2})
    )
    r = runner.invoke(cli_app, ["rewards", "create", "--brand", "demo", "--file", str(spec), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["stock_left"] == 2
    for i in range(2):
        r = runner.invoke(
            cli_app, ["rewards", "grant", "cli5", f"c{i}", "--brand", "demo", "--key", f"cli{i}", "--json"]
        )
        assert r.exit_code == 0, r.output
    code = json.loads(r.output)["code"]
    r = runner.invoke(cli_app, ["rewards", "grant", "cli5", "c9", "--brand", "demo", "--key", "cli9"])
    assert r.exit_code == 2 and "out of stock" in r.output
    r = runner.invoke(cli_app, ["rewards", "list", "--brand", "demo"], terminal_width=200)
    assert r.exit_code == 0 and "cli5" in r.output and "5元券" in r.output
    r = runner.invoke(cli_app, ["rewards", "redeem", code, "o-77", "--brand", "demo", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["status"] == "redeemed"
    r = runner.invoke(cli_app, ["points", "earn", "c1", "30", "--brand", "demo", "--source", "cli"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["points", "spend", "c1", "40", "--brand", "demo"])
    assert r.exit_code == 2 and "fewer than the 40" in r.output.replace("\n", " ")
    r = runner.invoke(cli_app, ["points", "balance", "c1", "--brand", "demo", "--json"])
    assert json.loads(r.output)["balance"] == 30
    r = runner.invoke(cli_app, ["points", "ledger", "c1", "--brand", "demo"], terminal_width=200)
    assert r.exit_code == 0 and "earn" in r.output and "cli" in r.output
