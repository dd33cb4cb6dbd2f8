"""The tier payout of the help writer's batch on SQLite runs straight on ``sqlite3`` (``driver_sql``): the same
payouts through SQLAlchemy and through the raw path write the same rows, column by column as stored (values and
SQLite storage types), and each failure (stock out, budget used, expired, duplicate key, code list) undoes exactly
what it undid before."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select, text

from siyu.config import Settings
from siyu.services import brands, rewards
from siyu.services import campaigns as C
from siyu.services.campaigns import help_writer, payouts
from siyu.services.context import Context
from siyu.stores.state import driver_sql
from siyu.stores.state.driver_sql import Prepared
from siyu.stores.state.engagement_models import RewardGrantRow
from tests.support.stores import empty_data_dir

B = "rawpay"
NOW = datetime(2026, 11, 5, 4, 0, 7)  # no microseconds: sqlite3's own adapter would drop ".000000"
NOW_STORED = "2026-11-05 04:00:07.000000"  # as SQLAlchemy stores a DateTime on SQLite
PAYOUTS = [  # participant, what, reward
    ("p1", "tier:0", "cup"),  # granted, budget 1.5 of 4
    ("p2", "tier:0", "cup"),  # granted, budget 3 of 4
    ("p3", "tier:0", "cup"),  # stock out: failed row
    ("p1", "tier:1", "vip"),  # budget used (3 + 2 > 4): grant and stock undone, failed row
    ("p1", "tier:2", "gift"),  # physical, no cost: awaiting address
    ("p1", "tier:2", "gift"),  # duplicate key: nothing written (False)
    ("p4", "tier:0", "pool"),  # code list: nothing written (False, ``issue`` does it)
    ("p5", "tier:0", "cup"),  # no customer id: False
    ("p6", "tier:0", "old"),  # expired: failed row
]


def _setup(ctx: Context) -> str:
    brands.create_brand(ctx, B, "Raw payouts")
    for spec in (
        {"id": "cup", "kind": "coupon", "config": {"face_value": 5, "code_prefix": "CUP", "valid_days": 30}},
        {"id": "vip", "kind": "virtual", "config": {"link": "https://x.test/v"}, "unit_cost": 2.0},
        {"id": "gift", "kind": "physical", "config": {"sku": "G1", "description": "杯子"}},
        {"id": "pool", "kind": "coupon", "config": {"face_value": 1, "codes": ["AAA1", "AAA2"]}},
        {"id": "old", "kind": "virtual", "config": {"link": "https://x.test/o"}, "valid_until": "2026-11-01T00:00:00"},
    ):
        extra = {"stock": 2, "unit_cost": 1.5} if spec["id"] == "cup" else {}
        rewards.create_reward(ctx, B, {"name": f"{spec['id']} 奖", **spec, **extra})
    return str(
        C.create(
            ctx,
            B,
            {
                "kind": "assist",
                "name": "助力",
                "starts_at": "2026-11-01T00:00:00",
                "ends_at": "2026-11-12T00:00:00",
                "budget": 4.0,
                "assist": {"tiers": [{"threshold": 2, "reward_id": "cup"}]},
            },
        )["id"]
    )


def _pay(ctx: Context, raw: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], int, str]:
    """Run PAYOUTS in one batch transaction; (results, statements SQLAlchemy executed, campaign id)."""
    monkeypatch.setattr(driver_sql, "RAW_SQLITE", raw)
    cid = _setup(ctx)
    seen: list[str] = []

    def job(con: Connection) -> list[bool]:
        event.listen(ctx.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        out = []
        for pid, what, rid in PAYOUTS:
            p = SimpleNamespace(id=pid, customer_id="" if pid == "p5" else f"c_{pid}", variant="A", guide_id="g1")
            out.append(payouts.issue_first_in(con, B, cid, p, what, rid, NOW))
        return out

    got = help_writer.run_alone(ctx.engine, job)
    return got, len(seen), cid


def _dump(ctx: Context, cid: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored column (value and SQLite type) of what a payout writes; random ids and codes normalized."""
    db = sqlite3.connect(str(ctx.engine.url.database))
    out: dict[str, list[tuple[Any, ...]]] = {}
    queries = {
        "reward_grants": "SELECT * FROM reward_grants ORDER BY rowid",
        "campaign_rewards": "SELECT * FROM campaign_rewards ORDER BY id",
        "rewards": "SELECT id, stock_left, cost_spent, granted, updated_at FROM rewards ORDER BY id",
        "campaigns": "SELECT budget_spent FROM campaigns",
    }
    grant_ids: dict[str, str] = {}
    for table, sql in queries.items():
        cur = db.execute(sql)
        names = [d[0] for d in cur.description]
        rows = []
        for row in cur.fetchall():
            norm = []
            for name, v in zip(names, row, strict=True):
                if isinstance(v, str) and v.startswith("gr_"):
                    v = grant_ids.setdefault(v, f"<grant{len(grant_ids)}>")
                elif name == "code" and v:
                    assert re.fullmatch(r"CUP[A-Z0-9]{10}", v), v
                    v = "<code>"
                elif table == "rewards" and name == "updated_at" and v != NOW_STORED:
                    v = "<as created>"  # untouched (or its decrement undone)
                elif isinstance(v, str):
                    v = v.replace(cid, "<cid>")
                norm.append((name, v, type(v).__name__))
            rows.append(tuple(norm))
        out[table] = rows
    db.close()
    return out


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Context, Context]]:
    """Two fresh SQLite stores: one written through SQLAlchemy, one by the raw path."""
    sa, raw = (Context.open(Settings(data_dir=empty_data_dir(tmp_path / n))) for n in ("sa", "raw"))
    yield sa, raw
    sa.close()
    raw.close()


def test_raw_payouts_write_the_same_rows_as_sqlalchemy(
    two: tuple[Context, Context], monkeypatch: pytest.MonkeyPatch
) -> None:
    via_sa, via_raw = two
    got_sa, sa_statements, cid_sa = _pay(via_sa, False, monkeypatch)
    got_raw, raw_statements, cid_raw = _pay(via_raw, True, monkeypatch)
    assert got_raw == got_sa == [True, True, True, True, True, False, False, False, True]
    assert sa_statements > 20 and raw_statements == 0  # the raw path sent nothing through SQLAlchemy
    rows_sa, rows_raw = _dump(via_sa, cid_sa), _dump(via_raw, cid_raw)
    assert rows_raw == rows_sa
    rewards_rows = {r[0][1]: dict((n, v) for n, v, _t in r) for r in rows_raw["rewards"]}
    assert rewards_rows["cup"]["stock_left"] == 0 and rewards_rows["cup"]["granted"] == 2
    assert rewards_rows["vip"]["granted"] == 0 and rewards_rows["vip"]["cost_spent"] == 0  # budget: undone
    assert rewards_rows["gift"]["granted"] == 1  # the duplicate's decrement undone
    assert rewards_rows["pool"]["granted"] == 0 and rewards_rows["pool"]["stock_left"] == 2
    assert rewards_rows["cup"]["updated_at"] == NOW_STORED and rewards_rows["vip"]["updated_at"] == "<as created>"
    assert rows_raw["campaigns"] == [(("budget_spent", 3.0, "float"),)]
    campaign = [{n: v for n, v, _t in r} for r in rows_raw["campaign_rewards"]]
    assert [(c["participant_id"], c["what"], c["status"]) for c in campaign] == [
        ("p1", "tier:0", "granted"),
        ("p2", "tier:0", "granted"),
        ("p3", "tier:0", "failed"),
        ("p1", "tier:1", "failed"),
        ("p1", "tier:2", "granted"),
        ("p6", "tier:0", "failed"),
    ]
    assert campaign[2]["detail"].startswith("out_of_stock:") and campaign[3]["detail"] == payouts.BUDGET_USED
    assert campaign[5]["detail"].startswith("expired:")
    grants = [{n: v for n, v, _t in r} for r in rows_raw["reward_grants"]]
    assert [g["reward_id"] for g in grants] == ["cup", "cup", "gift"]
    assert grants[0]["value"] == '{"face_value": 5.0, "min_spend": 0.0}' and grants[0]["address"] == "null"
    assert grants[0]["expires_at"] == "2026-12-05 04:00:07.000000"
    assert grants[2]["status"] == "awaiting_address" and grants[2]["cost"] == 0.0


def test_raw_rows_read_back_through_sqlalchemy(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    _pay(ctx, True, monkeypatch)
    with ctx.sessions() as s:
        g = s.scalars(select(RewardGrantRow).where(RewardGrantRow.reward_id == "cup")).first()
    assert g is not None and g.value == {"face_value": 5.0, "min_spend": 0.0} and g.created_at == NOW


def test_a_statement_needing_python_defaults_keeps_the_sqlalchemy_path(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pay(ctx, True, monkeypatch)
    stmt = Prepared(insert(RewardGrantRow.__table__))  # type: ignore[arg-type]
    row = {"id": "gr_x", "brand_id": B, "reward_id": "cup", "kind": "coupon", "customer_id": "c"}
    row |= {"source": "t", "idempotency_key": "k", "status": "issued"}  # cost, value, created_at …: defaults
    seen: list[str] = []
    event.listen(ctx.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    help_writer.run_alone(ctx.engine, lambda con: stmt.rowcount(con, row))
    assert any(sql.startswith("INSERT INTO reward_grants") for sql in seen)
    with ctx.sessions() as s:
        g = s.get(RewardGrantRow, "gr_x")
    assert g is not None and g.value == {} and g.cost == 0.0 and g.created_at is not None


def test_payout_failures_undo_the_same_on_both_backends(any_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL keeps the SQLAlchemy path (savepoints by ``begin_nested``): same answers, same undoing."""
    got, _n, cid = _pay(any_ctx, True, monkeypatch)
    assert got == [True, True, True, True, True, False, False, False, True]
    with any_ctx.engine.connect() as con:
        stock: dict[str, int] = dict(con.execute(text("SELECT id, granted FROM rewards")).all())
        spent = con.execute(text("SELECT budget_spent FROM campaigns WHERE id = :c"), {"c": cid}).scalar()
        statuses = con.execute(text("SELECT what, status FROM campaign_rewards ORDER BY id")).all()
    assert stock == {"cup": 2, "vip": 0, "gift": 1, "pool": 0, "old": 0} and spent == pytest.approx(3.0)
    assert [s for _w, s in statuses] == ["granted", "granted", "failed", "failed", "granted", "failed"]


def _helps(ctx: Context, raw: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, list[Any]], list[str]]:
    """Three sharers, two helps each, through the help writer; the rows written, normalized, and the payout
    statements SQLAlchemy executed."""
    monkeypatch.setattr(driver_sql, "RAW_SQLITE", raw)
    brands.create_brand(ctx, B, "Raw payouts")
    rewards.create_reward(ctx, B, {"id": "cup", "name": "杯", "kind": "coupon", "config": {"face_value": 5}})
    rewards.update_reward(ctx, B, "cup", {"unit_cost": 1.0})
    rewards.create_reward(ctx, B, {"id": "gift", "name": "礼", "kind": "physical", "config": {"sku": "G"}, "stock": 2})
    spec = {
        "kind": "assist",
        "name": "助力",
        "starts_at": "2026-11-01T00:00:00",
        "ends_at": "2026-11-12T00:00:00",
        "budget": 2.5,
        "assist": {"tiers": [{"threshold": 1, "reward_id": "cup"}, {"threshold": 2, "reward_id": "gift"}]},
        "anti_abuse": {"device_per_day": 1000, "ip_per_hour": 1000, "person_per_day": 1000},
    }
    cid = str(C.create(ctx, B, spec)["id"])
    C.launch(ctx, B, cid)
    seen: list[str] = []
    event.listen(ctx.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    for i in range(3):
        token = C.join(ctx, B, cid, C.parse_identity("unionid", f"s{i}"), now=NOW)["token"]
        for k in range(2):
            who = C.parse_identity("unionid", f"h{i}{k}")
            C.help(ctx, B, cid, token, who, ip=f"10.0.{i}.{k}", now=NOW)
    paid = [s for s in seen if re.search(r"reward_grants|campaign_rewards|UPDATE rewards|tiers_reached =", s)]
    db = sqlite3.connect(str(ctx.engine.url.database))
    names: dict[str, str] = {cid: "<cid>"}
    for n, (pid, cust) in enumerate(db.execute("SELECT id, customer_id FROM campaign_participants ORDER BY rowid")):
        names |= {pid: f"<p{n}>", cust: f"<c{n}>"}
    for n, (gid,) in enumerate(db.execute("SELECT id FROM reward_grants ORDER BY rowid")):
        names[gid] = f"<g{n}>"
    out: dict[str, list[Any]] = {}
    for table, skip in (
        ("campaign_rewards", ()),
        ("reward_grants", ("code",)),
        ("campaign_helps", ()),
        ("campaign_participants", ("token", "created_at", "updated_at")),
    ):
        cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
        cols = [d[0] for d in cur.description]
        rows = []
        for row in cur.fetchall():
            vals = []
            for c, v in zip(cols, row, strict=True):
                if isinstance(v, str):
                    for old, new in names.items():
                        v = v.replace(old, new) if old else v
                vals.append((c, "<skipped>" if c in skip else v, type(v).__name__))
            rows.append(vals)
        out[table] = rows
    db.close()
    return out, paid


def test_helps_reaching_tiers_write_the_same_rows_raw_and_through_sqlalchemy(
    two: tuple[Context, Context], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_sa, paid_sa = _helps(two[0], False, monkeypatch)
    rows_raw, paid_raw = _helps(two[1], True, monkeypatch)
    assert paid_sa and not paid_raw  # tier payouts, the stock decrement, tiers reached: all raw on SQLite
    for table in rows_sa:
        assert rows_raw[table] == rows_sa[table], table
    status = [{c: v for c, v, _t in r} for r in rows_raw["campaign_rewards"]]
    assert [(r["participant_id"], r["what"], r["status"]) for r in status] == [
        ("<p0>", "tier:0", "granted"),
        ("<p0>", "tier:1", "granted"),
        ("<p1>", "tier:0", "granted"),
        ("<p1>", "tier:1", "granted"),
        ("<p2>", "tier:0", "failed"),  # budget 2.5: the third cup is refused
        ("<p2>", "tier:1", "failed"),  # gift stock 2
    ]
    tiers = [{c: v for c, v, _t in r}["tiers_reached"] for r in rows_raw["campaign_participants"]]
    assert tiers == [2, 2, 2]
