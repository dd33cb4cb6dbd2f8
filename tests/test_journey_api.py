"""Journeys through the real HTTP API (CRUD, validate, publish, pause, enter, stats, schema, the guides' task
inbox with its scope) and the `siyu journeys` CLI, on a freshly seeded demo brand."""

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
from siyu.services.journeys.executor import run_until_idle
from tests.support.live import api_login, live_server
from tests.support.scope import reachable_ids
from tests.support.stores import open_demo

JOURNEY: dict[str, Any] = {
    "trigger": {"kind": "manual"},
    "goal": {"event": "Order Completed"},
    "start": "ab",
    "nodes": [
        {
            "id": "ab",
            "kind": "experiment",
            "arms": [{"name": "call", "weight": 1}, {"name": "msg", "weight": 1}],
            "holdout_percent": 20,
        },
        {
            "id": "call",
            "kind": "action",
            "action": {
                "type": "task",
                "task_kind": "call",
                "title": "电话回访",
                "script": "您好，最近使用感受如何？",
                "due_hours": 48,
            },
        },
        {"id": "msg", "kind": "action", "action": {"type": "task", "task_kind": "message", "title": "发消息"}},
        {"id": "w", "kind": "wait", "minutes": 10080},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [
        {"from": "ab", "to": "call", "branch": "call"},
        {"from": "ab", "to": "msg", "branch": "msg"},
        {"from": "ab", "to": "w", "branch": "holdout"},
        {"from": "call", "to": "w"},
        {"from": "msg", "to": "w"},
        {"from": "w", "to": "end"},
    ],
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Context]]:
    from siyu.services.demo import DemoConfig

    ctx = open_demo(Path(tmp_path_factory.mktemp("journeyapi")) / "data", DemoConfig(customers=300))
    with live_server(create_app(ctx, with_console=False)) as base:
        yield base, ctx
    ctx.close()


def _call(base: str, method: str, path: str, h: dict[str, str], status: int = 200, **kw: Any) -> Any:
    r = httpx.request(method, base + path, headers=h, timeout=60, **kw)
    assert r.status_code == status, r.text
    return r.json()


def _guide_customers(ctx: Context, guide_id: str) -> set[str]:
    """A guide's own customers (reachable: active relations and members of the groups they own)."""
    return reachable_ids(ctx, "demo", guide_id)


def test_journey_lifecycle_tasks_and_scope(api: tuple[str, Context]) -> None:
    base, ctx = api
    op = api_login(base, "operator", "siyu-operator")
    guide = api_login(base, "guide1", "siyu-guide")
    # validation names the node and the field, for the editor
    bad = json.loads(json.dumps(JOURNEY))
    bad["nodes"][3]["minutes"] = -5
    bad["edges"].append({"from": "call", "to": "nowhere"})
    v = _call(base, "POST", "/api/journeys/validate", op, json={"definition": bad})
    assert v["valid"] is False and {"node_id": "w", "field": "minutes"} in [
        {"node_id": e["node_id"], "field": e["field"]} for e in v["errors"]
    ]
    r = _call(base, "POST", "/api/journeys", op, 400, json={"name": "坏的", "definition": bad})
    assert r["errors"][0]["node_id"] == "w" and r["field"] == "nodes[3].minutes"
    assert _call(base, "POST", "/api/journeys/validate", op, json={"definition": JOURNEY}) == {
        "valid": True,
        "errors": [],
    }
    schema = _call(base, "GET", "/api/journeys/schema", guide)
    assert "experiment" in schema["node_kinds"] and "properties" in schema["json_schema"]
    # guides read but do not change
    _call(base, "POST", "/api/journeys", guide, 403, json={"name": "x", "definition": JOURNEY})
    j = _call(base, "POST", "/api/journeys", op, json={"name": "沉睡唤醒", "definition": JOURNEY})
    assert (j["status"], j["version"]) == ("draft", 1)
    _call(base, "POST", f"/api/journeys/{j['id']}/enter", op, 400, json={"customer_ids": ["x"]})  # not live yet
    _call(base, "POST", f"/api/journeys/{j['id']}/publish", guide, 403)
    assert _call(base, "POST", f"/api/journeys/{j['id']}/publish", op)["status"] == "active"
    ids = [r[0] for r in ctx.warehouse.fetch("SELECT customer_id FROM customers WHERE brand_id = 'demo'")]
    e = _call(base, "POST", f"/api/journeys/{j['id']}/enter", op, json={"customer_ids": [*ids, "no-such"]})
    assert (e["entered"], e["unknown"]) == (len(ids), ["no-such"])
    again = _call(base, "POST", f"/api/journeys/{j['id']}/enter", op, json={"customer_ids": ids, "key": "second"})
    assert again["entered"] == 0  # re-entry 'once'
    _call(base, "POST", f"/api/journeys/{j['id']}/enter", op, 422, json={"customer_ids": ["c"] * 10_001})
    run_until_idle(ctx)
    # a guide's statistics count their own customers only
    gst = _call(base, "GET", f"/api/journeys/{j['id']}/stats", guide)
    own_entered = len(_guide_customers(ctx, "g01") & set(ids))
    assert gst["entries"] == own_entered and 0 < own_entered < len(ids)
    assert sum({n["id"]: n for n in gst["nodes"]}["ab"]["passed"].values()) == own_entered
    st = _call(base, "GET", f"/api/journeys/{j['id']}/stats", op)
    nodes = {n["id"]: n for n in st["nodes"]}
    passed = nodes["ab"]["passed"]
    assert sum(passed.values()) == len(ids) and set(passed) == {"call", "msg", "holdout"}
    assert nodes["w"]["waiting"] == len(ids) and st["active"] == len(ids)
    ex = st["experiments"][0]
    assert ex["comparator"] == "holdout" and ex["verdict"]["decision"] == "too_early"
    assert {a["arm"]: a["customers"] for a in ex["arms"]} == passed
    # the task inbox: a guide sees exactly the tasks of their own customers
    all_tasks = _call(base, "GET", "/api/journeys/tasks", op, params={"page_size": 500})
    assert all_tasks["total"] == passed["call"] + passed["msg"]
    mine = _call(base, "GET", "/api/journeys/tasks", guide, params={"page_size": 500, "guide_id": "g02"})
    own = _guide_customers(ctx, "g01")
    assert mine["total"] > 0 and {t["customer_id"] for t in mine["items"]} <= own
    expected = [t for t in all_tasks["items"] if t["guide_id"] == "g01"]
    assert sorted(t["id"] for t in mine["items"]) == sorted(t["id"] for t in expected)
    call_task = next(t for t in all_tasks["items"] if t["node_id"] == "call")
    assert call_task["script"] == "您好，最近使用感受如何？" and call_task["customer_url"].endswith(
        call_task["customer_id"]
    )
    foreign = next(t for t in all_tasks["items"] if t["guide_id"] not in (None, "g01"))
    _call(base, "POST", f"/api/journeys/tasks/{foreign['id']}/complete", guide, 404, json={})
    done = _call(base, "POST", f"/api/journeys/tasks/{mine['items'][0]['id']}/complete", guide, json={"note": "已联系"})
    assert done["status"] == "done" and done["done_by"] == "guide1"
    _call(base, "POST", f"/api/journeys/tasks/{mine['items'][0]['id']}/skip", guide, 409, json={})
    if mine["total"] > 1:
        assert _call(base, "POST", f"/api/journeys/tasks/{mine['items'][1]['id']}/skip", guide, json={})["status"] == (
            "skipped"
        )
    left = _call(base, "GET", "/api/journeys/tasks", guide, params={"page_size": 500})
    assert left["total"] == mine["total"] - min(2, mine["total"])
    _call(base, "GET", "/api/journeys/tasks", guide, 400, params={"page_size": 501})
    # pause holds; a new version goes live for new entries only
    assert _call(base, "POST", f"/api/journeys/{j['id']}/pause", op)["status"] == "paused"
    _call(base, "POST", f"/api/journeys/{j['id']}/pause", op, 409)
    assert _call(base, "POST", f"/api/journeys/{j['id']}/resume", op)["status"] == "active"
    v2 = json.loads(json.dumps(JOURNEY))
    v2["nodes"][3]["minutes"] = 60
    p = _call(base, "PATCH", f"/api/journeys/{j['id']}", op, json={"definition": v2})
    assert (p["version"], p["published_version"]) == (2, 1)
    assert _call(base, "POST", f"/api/journeys/{j['id']}/publish", op)["published_version"] == 2
    assert [x["version"] for x in _call(base, "GET", f"/api/journeys/{j['id']}/versions", op)["items"]] == [1, 2]
    assert any(x["id"] == j["id"] for x in _call(base, "GET", "/api/journeys", guide)["items"])
    _call(base, "GET", "/api/journeys/j_nope", op, 404)


def test_cli(api: tuple[str, Context], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, ctx = api
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    bad = json.loads(json.dumps(JOURNEY))
    bad["edges"].pop(0)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    r = runner.invoke(cli_app, ["journeys", "validate", "--file", str(f)], terminal_width=200)
    assert r.exit_code == 1 and "ab" in r.output and "'call' leads nowhere" in r.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps(JOURNEY))
    assert runner.invoke(cli_app, ["journeys", "validate", "--file", str(good)]).exit_code == 0
    r = runner.invoke(cli_app, ["journeys", "create", "demo", "CLI 旅程", "--file", str(good), "--publish"])
    assert r.exit_code == 0, r.output
    jid = r.output.split()[0]
    r = runner.invoke(cli_app, ["journeys", "list", "demo", "--json"])
    assert jid in r.output
    r = runner.invoke(cli_app, ["journeys", "pause", "demo", jid])
    assert r.exit_code == 0 and "paused" in r.output
    r = runner.invoke(cli_app, ["journeys", "stats", "demo", jid, "--json"])
    assert json.loads(r.output)["entries"] == 0
    r = runner.invoke(cli_app, ["journeys", "show", "demo", jid, "--json"])
    assert json.loads(r.output)["status"] == "paused"
    r = runner.invoke(cli_app, ["journeys", "publish", "demo", "j_nope"])
    assert r.exit_code == 2
