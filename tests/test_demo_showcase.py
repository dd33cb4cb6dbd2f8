"""The demo showcase on a small demo brand of its own (tmp dir, the local WeCom server as a real process), read
back over real HTTP: every capability's API answers non-empty, a second run changes nothing, and a guide's
客群资产数 is one figure everywhere (overview, /api/metrics/reachable, leaderboard, scorecard, 我的业绩) — equal
to an independent SQL count of their reachable customers (active relations ∪ members of the groups they own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, local_wecom, seed_demo
from siyu.services.demo.config import END_DATE
from siyu.services.demo.showcase import ShowcaseResult, run_showcase
from siyu.services.demo.showcase_campaigns import ASSIST_NAME, GROUP_NAME
from siyu.services.metrics import data_end
from siyu.services.wecom.config import client_for, get_config
from tests.support.live import live_server
from tests.support.postgres import free_port
from tests.support.scope import reachable_ids

pytestmark = pytest.mark.slow

STATE_TABLES = (
    "campaigns",
    "campaign_participants",
    "campaign_helps",
    "campaign_teams",
    "script_folders",
    "scripts",
    "followups",
    "pool_leads",
    "moment_tasks",
    "journeys",
    "journey_tasks",
    "channel_codes",
    "segments",
    "script_uses",
    "campaign_visits",
    "moment_task_guides",
    "pool_moves",
)


def _counts(ctx: Context) -> dict[str, int]:
    with ctx.engine.connect() as c:
        from sqlalchemy import inspect, text

        have = set(inspect(c).get_table_names())
        return {t: int(c.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0) for t in STATE_TABLES if t in have}


class Env:
    def __init__(self, base: str, ctx: Context, first: ShowcaseResult, second: ShowcaseResult, before: Any, after: Any):
        self.base, self.ctx, self.first, self.second, self.before, self.after = base, ctx, first, second, before, after

    def auth(self, username: str, password: str) -> dict[str, str]:
        r = httpx.post(f"{self.base}/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def get(self, path: str, h: dict[str, str], **params: Any) -> Any:
        r = httpx.get(self.base + path, headers=h, params=params, timeout=120)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        return r.json()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    ctx = Context.open(Settings(data_dir=Path(tmp_path_factory.mktemp("showcase")) / "data"))
    seed_demo(ctx, DemoConfig(customers=1500))
    proc = local_wecom.start(ctx, "demo", free_port(), "http://127.0.0.1:9")
    client = client_for(get_config(ctx, "demo"))
    try:
        first = run_showcase(ctx, "demo", client)
        before = _counts(ctx)
        second = run_showcase(ctx, "demo", client)
        after = _counts(ctx)
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=20)
    with live_server(create_app(ctx, with_console=False)) as base:
        yield Env(base, ctx, first, second, before, after)
    ctx.close()


def test_second_run_changes_nothing(env: Env) -> None:
    assert env.first.created and not env.second.created
    assert all(not v for v in env.second.parts.values()), env.second.parts
    assert env.before == env.after
    assert env.before["campaigns"] == 2 and env.before["scripts"] >= 12 and env.before["channel_codes"] == 2


def test_guides_wecom_statistics_reach_the_scorecard(env: Env) -> None:
    assert env.first.parts["behavior"] > 0 and not env.second.parts["behavior"]
    card = env.get("/api/guides/scorecard", env.auth("operator", "siyu-operator"))
    rows = [r for r in card["rows"] if r["reply_source"] == "wecom"]  # the local server's 联系客户统计, synced
    assert len(rows) == len(card["rows"]) >= 10, card["rows"][:2]
    assert all(50 <= r["reply_percentage"] <= 100 and r["reply_minutes"] > 0 for r in rows), rows[:2]
    assert all(r["negative_feedback"] is not None for r in rows)


def test_clv_is_fitted_once(env: Env) -> None:
    assert env.first.parts["clv"]["status"] == "done" and not env.second.parts["clv"], env.first.parts["clv"]
    got = env.get("/api/clv/overview", env.auth("operator", "siyu-operator"))
    assert got["fit"]["status"] == "done" and got["totals"]["customers"] == env.first.parts["clv"]["customers"]
    assert got["totals"]["clv_total"] > 0 and got["histogram"], got["totals"]


def test_campaigns_full(env: Env) -> None:
    h = env.auth("operator", "siyu-operator")
    items = env.get("/api/campaigns", h)
    items = items["items"] if isinstance(items, dict) else items
    by_name = {c["name"]: c for c in items}
    assist, group = by_name[ASSIST_NAME], by_name[GROUP_NAME]
    assert assist["status"] == "ended" and group["status"] == "live"
    stats = env.get(f"/api/campaigns/{assist['id']}/stats", h)
    assert stats["totals"]["participants"] >= 20, stats["totals"]
    for camp in (assist, group):  # every join and help had its page view, and idle visitors came too
        totals = env.get(f"/api/campaigns/{camp['id']}/stats", h)["totals"]
        assert 0 < totals["visit_participation"] < 1 and 0 < totals["participation"] < 1, totals
    totals = stats["totals"]  # the people it brought in came back to buy (newcomer orders)
    assert 0 < totals["retention_7d"] <= totals["retention_30d"] < 1, totals
    assert totals["retention_7d_eligible"] == totals["new_customers"] and totals["gmv"] > 0, totals
    assert data_end(env.ctx, "demo") == END_DATE  # the newcomers' orders stay inside the demo's data window
    board = env.get(f"/api/campaigns/{assist['id']}/leaderboard", h)
    assert len(board["items"]) >= 10 and any(r.get("target_participants") for r in board["items"])
    tree = env.get(f"/api/campaigns/{assist['id']}/tree", h, max_depth=5)
    depths = {int(k) for k in tree["depths"]}
    assert 0 in depths and 1 in depths and max(depths) <= 3, tree["depths"]
    rejected = env.get(f"/api/campaigns/{assist['id']}/helps", h, state="rejected")["items"]
    assert {"self_help", "already_helped"} <= {x["reason"] for x in rejected}
    counted = env.get(f"/api/campaigns/{assist['id']}/helps", h, state="counted")["items"]
    assert len(counted) >= 30
    page = httpx.get(f"{env.base}/m/c/{group['id']}", timeout=60, follow_redirects=True)
    assert page.status_code == 200 and "拼团" in page.text


def test_guide_work_pages_non_empty(env: Env) -> None:
    op = env.auth("operator", "siyu-operator")
    g1 = env.auth("guide1", "siyu-guide")
    assert len(env.get("/api/scripts/folders", op)) >= 3
    scripts = env.get("/api/scripts", op)
    scripts = scripts["items"] if isinstance(scripts, dict) else scripts
    assert len(scripts) >= 12 and any((s.get("use_count") or s.get("uses") or 0) > 0 for s in scripts)
    assert env.get("/api/followups", g1)["total"] > 0
    tasks = env.get("/api/moments", op)
    tasks = tasks["items"] if isinstance(tasks, dict) else tasks
    assert len(tasks) == 1 and 0 < sum(g["status"] == "done" for g in tasks[0]["guides"]) < len(tasks[0]["guides"])
    assert env.get("/api/pool", op, status="all")["total"] == 40
    assert env.get("/api/pool", g1, status="owned")["total"] == 5
    journeys = env.get("/api/journeys", op)
    journeys = journeys["items"] if isinstance(journeys, dict) else journeys
    assert len(journeys) == 2 and all(j["status"] == "active" for j in journeys)
    inbox = env.get("/api/guides/inbox", g1)
    assert inbox["total"] > 0 and inbox["counts"].get("followup", 0) > 0, inbox["counts"]
    codes = env.get("/api/wecom/codes", op)
    codes = codes["items"] if isinstance(codes, dict) else codes
    assert len(codes) == 2 and all(c["welcome"].get("text") for c in codes)


def test_a_guides_reachable_is_one_figure(env: Env) -> None:
    g1 = env.auth("guide1", "siyu-guide")
    expected = len(reachable_ids(env.ctx, "demo", "g01"))
    assert expected > 0
    reach = env.get("/api/metrics/reachable", g1)
    assert reach["brand"] == expected  # the overview's KPI card
    assert next(r for r in reach["guides"] if r["guide_id"] == "g01")["reachable"] == expected
    board = env.get("/api/metrics/guides", g1)
    assert next(r for r in board["rows"] if r["guide_id"] == "g01")["reachable"] == expected
    card = env.get("/api/guides/scorecard", g1)
    assert next(r for r in card["rows"] if r["guide_id"] == "g01")["reachable"] == expected
    me = env.get("/api/guides/me", g1)
    assert me["row"]["reachable"] == expected
    # every group member of g01's groups is one of g01's customers (customer search agrees with the figure)
    found = env.get("/api/customers", g1, page_size=1)
    assert found["total"] >= expected
    # money in cents in the API answers
    for r in card["rows"]:
        assert r["gmv"] is None or round(r["gmv"], 2) == r["gmv"]
