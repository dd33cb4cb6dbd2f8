"""`siyu campaigns` (create --file with problems named, launch, list, show, participants, tree) and the pilot mode
(a percent of people by hash, or a segment's members) and A/B variants assigned by hashing person + campaign."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
from siyu.domain.campaign import rules
from siyu.services import brands, rewards
from siyu.services import campaigns as C
from siyu.services.context import Context

B = "acme"
NOW = datetime(2026, 11, 5, 4, 0)


def definition(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "assist",
        "name": "CLI 助力",
        "starts_at": "2026-11-01T00:00:00",
        "ends_at": "2026-11-12T00:00:00",
        "assist": {"tiers": [{"threshold": 2, "reward_id": "c10"}]},
    }
    return d | over


def phone(i: int) -> Any:
    return C.parse_identity("phone", f"1370000{i:04d}")


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    try:
        brands.create_brand(ctx, B, "Acme")
        rewards.create_reward(ctx, B, {"id": "c10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}})
    finally:
        ctx.close()
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    run = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(definition(assist={"tiers": [{"threshold": 3, "reward_id": "c10", "pool": ["x"]}]})))
    r = run.invoke(app, ["campaigns", "create", B, "--file", str(bad)])
    assert r.exit_code == 2 and "assist.tiers.0.reward_id" in r.output and "either" in r.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps(definition()), encoding="utf-8")
    r = run.invoke(app, ["campaigns", "create", B, "--file", str(good), "--launch"])
    assert r.exit_code == 0, r.output
    cid, status = r.output.split()[:2]
    assert status == "live"
    ctx = Context.open(settings)
    try:
        s = C.join(ctx, B, cid, phone(1), guide_id="g1", now=NOW)
        child = C.join(ctx, B, cid, phone(2), sharer_token=s["token"], now=NOW)
        C.help(ctx, B, cid, s["token"], phone(2), now=NOW)
        C.help(ctx, B, cid, s["token"], phone(1), now=NOW)  # self
    finally:
        ctx.close()
    r = run.invoke(app, ["campaigns", "list", B])
    assert r.exit_code == 0 and "campaigns 裂变活动" in r.output and "live" in r.output
    r = run.invoke(app, ["campaigns", "list", B, "--json"])
    assert [(c["id"], c["status"], c["participants"]) for c in json.loads(r.output)] == [(cid, "live", 2)]
    r = run.invoke(app, ["campaigns", "show", B, cid, "--json"])
    shown = json.loads(r.output)
    assert shown["helps"]["by_reason"] == {"self_help": 1} and shown["participants"] == 2
    assert [(g["guide_id"], g["participants"], g["conversions"], g["gmv"]) for g in shown["guides"]] == [
        ("g1", 2, 0, 0.0)
    ]  # the stats leaderboard's rows (the invited child is credited to its sharer's guide)
    r = run.invoke(app, ["campaigns", "show", B, cid])
    assert r.exit_code == 0 and "self_help" in r.output
    r = run.invoke(app, ["campaigns", "tree", B, cid])
    assert r.exit_code == 0 and s["id"] in r.output and child["id"] in r.output, r.output
    r = run.invoke(app, ["campaigns", "participants", B, cid, "--json"])
    assert json.loads(r.output)["total"] == 2
    r = run.invoke(app, ["campaigns", "end", B, cid])
    assert r.exit_code == 0 and "ended" in r.output
    r = run.invoke(app, ["campaigns", "launch", B, cid])
    assert r.exit_code == 2 and "cannot move" in r.output


@pytest.fixture
def bctx(ctx: Context) -> Context:
    brands.create_brand(ctx, B, "Acme")
    rewards.create_reward(ctx, B, {"id": "c10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}})
    rewards.create_reward(ctx, B, {"id": "c20", "name": "20元券", "kind": "coupon", "config": {"face_value": 20}})
    return ctx


def test_pilot_percent_then_launch(bctx: Context) -> None:
    cid = C.create(bctx, B, definition(pilot={"percent": 30}))["id"]
    C.pilot(bctx, B, cid)
    joined, refused = [], []
    for i in range(40):
        try:
            joined.append(C.join(bctx, B, cid, phone(i), now=NOW))
        except C.Refused as err:
            assert err.code == "not_in_pilot" and err.en
            refused.append(i)
    assert joined and refused
    for p in joined:  # exactly the people the hash puts in the first 30 %
        assert rules.in_pilot_percent(30, f"c:{p['customer_id']}", cid)
    C.launch(bctx, B, cid)
    assert C.join(bctx, B, cid, phone(refused[0]), now=NOW)["depth"] == 0


def test_pilot_segment_members_only(bctx: Context) -> None:
    cid = C.create(bctx, B, definition(pilot={"segment_id": "vip"}))["id"]
    C.pilot(bctx, B, cid)
    from siyu.services import oneid

    with oneid.observation_transaction(bctx) as tx:
        oneid.add_observations(
            tx, B, [oneid.Observation("crm", "r1", NOW, (phone(1),)), oneid.Observation("crm", "r2", NOW, (phone(2),))]
        )
    oneid.resolve_pending(bctx, B)
    vip = oneid.customer_of(bctx, B, phone(1))
    with bctx.warehouse.transaction() as cur:
        cur.execute("INSERT INTO segment_members VALUES (?, 'vip', ?, ?, NULL)", [B, vip, NOW])
    assert C.join(bctx, B, cid, phone(1), now=NOW)["customer_id"] == vip
    with pytest.raises(C.Refused) as exc:
        C.join(bctx, B, cid, phone(2), now=NOW)
    assert exc.value.code == "not_in_pilot"
    with pytest.raises(Exception, match="pilot"):
        C.pilot(bctx, B, C.create(bctx, B, definition(name="no pilot"))["id"])


def test_variants_split_traffic_and_set_the_threshold(bctx: Context) -> None:
    cid = C.create(
        bctx,
        B,
        definition(
            variants=[
                {"id": "easy", "weight": 1, "tiers": [{"threshold": 1, "reward_id": "c10"}]},
                {"id": "rich", "weight": 1, "tiers": [{"threshold": 2, "reward_id": "c20"}], "title": "多邀多得"},
            ]
        ),
    )["id"]
    C.launch(bctx, B, cid)
    people = [C.join(bctx, B, cid, phone(i), now=NOW) for i in range(30)]
    by = {v: [p for p in people if p["variant"] == v] for v in ("easy", "rich")}
    assert len(by["easy"]) + len(by["rich"]) == 30 and by["easy"] and by["rich"]
    assert C.join(bctx, B, cid, phone(0), now=NOW)["variant"] == people[0]["variant"]  # stable
    e, r = by["easy"][0], by["rich"][0]
    C.help(bctx, B, cid, e["token"], phone(100), now=NOW)
    C.help(bctx, B, cid, r["token"], phone(101), now=NOW)
    assert [x["reward_id"] for x in C.progress(bctx, B, e["id"])["rewards"]] == ["c10"]
    assert C.progress(bctx, B, r["id"])["rewards"] == []
    C.help(bctx, B, cid, r["token"], phone(102), now=NOW)
    assert [x["reward_id"] for x in C.progress(bctx, B, r["id"])["rewards"]] == ["c20"]
    helps = C.helps(bctx, B, cid)["items"]
    assert {h["variant"] for h in helps} == {"easy", "rich"}
