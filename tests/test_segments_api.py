"""Segments through the real HTTP API (live preview, CRUD + versions, members, exports, lookalike, guide scope)
and the `siyu segments` CLI, on a demo brand seeded into this module's own stores (tests here write)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.services.context import Context
from tests.support.stores import open_demo
from tests.test_metrics_value import Ref, raw

AS_OF = date(2026, 11, 1)  # the default: the day after the demo's last day


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig

    c = open_demo(tmp_path_factory.mktemp("segapi") / "data", DemoConfig(customers=1500))
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(own: Context) -> Iterator[str]:
    from tests.support.live import live_server

    with live_server(create_app(own, with_console=False)) as base:
        yield base


@pytest.fixture(scope="module")
def ref(own: Context) -> Ref:
    return Ref(own, "demo")


def login(base: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def call(method: str, base: str, path: str, h: dict[str, str], status: int = 200, **kw: Any) -> Any:
    r = httpx.request(method, base + path, headers=h, timeout=120, **kw)
    assert r.status_code == status, r.text
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r


def all_members(base: str, h: dict[str, str], sid: str) -> tuple[int, set[str]]:
    """(total, ids) of a segment's members, every page."""
    ids: set[str] = set()
    page = 1
    while True:
        got = call("GET", base, f"/api/segments/{sid}/members", h, params={"page": page, "page_size": 200})
        ids |= {i["customer_id"] for i in got["items"]}
        if page * 200 >= got["total"]:
            return got["total"], ids
        page += 1


def guide_customers(ref: Ref, guide_id: str) -> set[str]:
    return ref.guide_customers(guide_id)


REPEAT = {"kind": "orders", "op": "gte", "value": 3}
CLICKED = {"kind": "event", "event": "Message Clicked", "window_days": 60, "op": "gte", "value": 1}


def expected_repeat(ref: Ref) -> set[str]:
    n = ref.orders_before(AS_OF).groupby("customer_id")["order_id"].nunique()
    return set(n[n >= 3].index)


def test_preview_counts_and_guide_scope(api: str, ref: Ref) -> None:
    admin = login(api, "admin", "siyu-admin")
    guide = login(api, "guide1", "siyu-guide")
    exp = expected_repeat(ref)
    got = call("POST", api, "/api/segments/preview", admin, json={"definition": REPEAT, "sample": 5})
    assert got["count"] == len(exp) and got["as_of"] == AS_OF.isoformat()
    assert len(got["sample"]) == 5 and {s["customer_id"] for s in got["sample"]} <= exp
    assert got["elapsed_ms"] < 5000

    mine = guide_customers(ref, "g01")
    g = call("POST", api, "/api/segments/preview", guide, json={"definition": REPEAT, "sample": 200})
    assert g["count"] == len(exp & mine) < got["count"]
    assert {s["customer_id"] for s in g["sample"]} <= mine

    bad = {"kind": "and", "conditions": [REPEAT, {"kind": "event", "event": "x", "window_days": -1}]}
    r = httpx.post(f"{api}/api/segments/preview", headers=admin, json={"definition": bad})
    assert r.status_code == 400 and r.json()["field"] == "definition.conditions[1].window_days"
    r = httpx.post(f"{api}/api/segments/preview", headers=admin, json={"definition": REPEAT, "as_of": "soon"})
    assert r.status_code == 400 and r.json()["field"] == "as_of"
    assert httpx.post(f"{api}/api/segments/preview", json={"definition": REPEAT}).status_code == 401


def test_crud_members_exports_and_guide_scope(api: str, ref: Ref) -> None:
    admin = login(api, "admin", "siyu-admin")
    guide = login(api, "guide1", "siyu-guide")
    created = call("POST", api, "/api/segments", admin, 201, json={"name": "复购3次+", "definition": REPEAT})
    sid = created["id"]
    exp = expected_repeat(ref)
    assert created["member_count"] == len(exp) and created["version"] == 1
    call("POST", api, "/api/segments", guide, 403, json={"name": "mine", "definition": REPEAT})
    call("PATCH", api, f"/api/segments/{sid}", guide, 403, json={"name": "x"})

    assert all_members(api, admin, sid) == (len(exp), exp)
    mine = guide_customers(ref, "g01")
    assert all_members(api, guide, sid) == (len(exp & mine), exp & mine)
    listed = call("GET", api, "/api/segments", guide)["items"]
    assert [s["member_count"] for s in listed if s["id"] == sid] == [len(exp & mine)]

    for fmt, read in (
        ("csv", lambda b: pd.read_csv(io.BytesIO(b), encoding="utf-8-sig")),
        ("xlsx", lambda b: pd.read_excel(io.BytesIO(b))),
        ("parquet", lambda b: pd.read_parquet(io.BytesIO(b))),
    ):
        r = call("GET", api, f"/api/segments/{sid}/export", guide, params={"format": fmt})
        frame = read(r.content)
        assert set(frame["customer_id"]) == exp & mine, fmt
        assert list(frame.columns) == ["customer_id", "name", "phone", "city", "entered_at"]
    r = httpx.get(f"{api}/api/segments/{sid}/export", headers=admin, params={"format": "pdf"})
    assert r.status_code == 400 and r.json()["field"] == "format"

    both = {"kind": "and", "conditions": [REPEAT, CLICKED]}
    v2 = call("PATCH", api, f"/api/segments/{sid}", admin, json={"definition": both})
    assert v2["version"] == 2 and v2["member_count"] < len(exp)
    versions = call("GET", api, f"/api/segments/{sid}/versions", admin)["items"]
    assert [v["definition"] for v in versions] == [REPEAT, both]
    refreshed = call("POST", api, f"/api/segments/{sid}/refresh", admin)
    assert (refreshed["entered"], refreshed["exited"]) == (0, 0)
    call("POST", api, f"/api/segments/{sid}/refresh", guide, 403)
    call("DELETE", api, f"/api/segments/{sid}", admin, 204)
    call("GET", api, f"/api/segments/{sid}", admin, 404)


def test_lookalike_lift_through_the_api(api: str, ref: Ref, own: Context) -> None:
    admin = login(api, "admin", "siyu-admin")
    vip = {"kind": "rfm", "classes": ["important_value", "important_keep"]}
    sid = call("POST", api, "/api/segments", admin, 201, json={"name": "重要客户", "definition": vip})["id"]
    r = call("POST", api, f"/api/segments/{sid}/lookalike", admin, json={"top": 50})
    assert r["lift"] > 1.5, r["lift"]
    assert r["found_in_top_decile"] <= r["hidden"] and len(r["customers"]) == 50
    members = all_members(api, admin, sid)[1]
    assert not members & {c["customer_id"] for c in r["customers"]}  # only customers outside the seed are scored
    scores = [c["score"] for c in r["customers"]]
    assert scores == sorted(scores, reverse=True)

    # customer ids are hashes: a seed picked by id has no pattern, its lift stays near 1
    random = {
        "kind": "or",
        "conditions": [
            {"kind": "trait", "field": "customer_id", "op": "starts_with", "value": f"c_{h}"} for h in "0123"
        ],
    }
    rid = call("POST", api, "/api/segments", admin, 201, json={"name": "随机", "definition": random})["id"]
    lifts = [call("POST", api, f"/api/segments/{rid}/lookalike", admin, json={"seed": s})["lift"] for s in (1, 2, 3)]
    assert 0.4 < sum(lifts) / 3 < 1.6, lifts

    guide = login(api, "guide1", "siyu-guide")
    g = call("POST", api, f"/api/segments/{sid}/lookalike", guide, json={"top": 20})
    assert {c["customer_id"] for c in g["customers"]} <= guide_customers(ref, "g01")
    csv = call("GET", api, f"/api/segments/{sid}/lookalike/export", admin, params={"format": "csv", "top": 30})
    assert len(pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig")) == 30
    bad = httpx.post(f"{api}/api/segments/{sid}/lookalike", headers=admin, json={"holdout": 0.9})
    assert bad.status_code == 400 and bad.json()["field"] == "holdout"


def test_cli(own: Context, ref: Ref, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(own.settings.data_dir))
    runner = CliRunner()
    exp = expected_repeat(ref)
    r = runner.invoke(cli_app, ["segments", "preview", "demo", "--definition", json.dumps(REPEAT), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["count"] == len(exp)
    spec = tmp_path / "seg.json"
    spec.write_text(json.dumps(REPEAT), encoding="utf-8")
    r = runner.invoke(cli_app, ["segments", "create", "demo", "CLI 复购", "--file", str(spec), "--json"])
    assert r.exit_code == 0, r.output
    sid = json.loads(r.output)["id"]
    r = runner.invoke(cli_app, ["segments", "list", "demo"], terminal_width=200)
    assert r.exit_code == 0 and "CLI 复购" in r.output
    r = runner.invoke(cli_app, ["segments", "refresh", "demo", sid, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["members"] == len(exp)
    r = runner.invoke(cli_app, ["segments", "members", "demo", sid, "--as-guide", "g01", "--json"])
    assert json.loads(r.output)["total"] == len(exp & guide_customers(ref, "g01"))
    out = tmp_path / "m.parquet"
    r = runner.invoke(cli_app, ["segments", "export", "demo", sid, "-o", str(out), "--format", "parquet"])
    assert r.exit_code == 0 and set(pd.read_parquet(out)["customer_id"]) == exp
    r = runner.invoke(cli_app, ["segments", "lookalike", "demo", sid, "--top", "5"], terminal_width=200)
    assert r.exit_code == 0 and "lift" in r.output, r.output
    r = runner.invoke(cli_app, ["segments", "preview", "demo", "--definition", '{"kind": "orders", "measure": "cnt"}'])
    assert r.exit_code == 2 and "definition.measure" in r.output
    r = runner.invoke(cli_app, ["segments", "show", "demo", sid], terminal_width=200)
    assert r.exit_code == 0 and "versions" in r.output
    assert raw(own, "segment_members", "demo").shape[0] > 0
