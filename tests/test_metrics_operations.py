"""Private-domain assets and operations: every figure against an independent pandas / plain-Python computation
over the raw tables of the demo brand; the asset statement's balance; inheritance on hand-made data; LMDI."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any

import pandas as pd
import pytest

from siyu.analytics.lmdi import lmdi
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import operations as ops
from tests.support.brand_days import day_end, day_start

BRAND = "demo"
ADMIN = User(0, BRAND, "t", "t", Role.ADMIN, None, "zh")
EXCLUDED = ("refunded", "cancelled")
FAR = pd.Timestamp("2262-01-01")
OUT_OF = {"customer": "lost_by_customer", "guide": "deleted_by_guide", "transfer": "moved_out"}
COLUMNS = (
    "opening",
    "acquired",
    "moved_in",
    "lost_by_customer",
    "deleted_by_guide",
    "moved_out",
    "left_group",
    "lost_other",
    "closing",
)


def raw(ctx: Context, name: str, brand: str = BRAND) -> pd.DataFrame:
    """A raw warehouse table of one brand as pandas (no engine code)."""
    df = ctx.warehouse.cursor().execute(f"SELECT * FROM {name} WHERE brand_id = ?", [brand]).df()
    return df


def _props(v: Any) -> dict[str, Any]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return {}
    return json.loads(v) if isinstance(v, str) else dict(v)


class Raw:
    """The demo's raw tables, linked to customers by hand through ``identities``."""

    def __init__(self, ctx: Context, brand: str = BRAND) -> None:
        self.brand = brand
        ids = raw(ctx, "identities", brand)[["id_type", "id_value", "customer_id"]]
        guides = raw(ctx, "guides", brand)
        self.store_of = dict(zip(guides.guide_id, guides.store_id, strict=True))
        tp = raw(ctx, "touchpoints", brand)
        self.owner = {k: v for k, v in zip(tp.touchpoint_id, tp.guide_id, strict=True) if isinstance(v, str)}
        self.wecom_tp = {g: k for k, g, kind in zip(tp.touchpoint_id, tp.guide_id, tp.kind, strict=True)
                         if kind == "wecom_contact"}  # fmt: skip
        ext = ids[ids.id_type == "external_userid"].rename(columns={"id_value": "external_userid"})
        self.rel = raw(ctx, "relations", brand).merge(ext[["external_userid", "customer_id"]], on="external_userid")
        self.gm = raw(ctx, "group_members", brand).merge(ids, on=["id_type", "id_value"])
        o = raw(ctx, "orders", brand)
        o = o[~o.status.isin(EXCLUDED)].merge(
            ids, left_on=["customer_ref_type", "customer_ref"], right_on=["id_type", "id_value"]
        )
        o["amount"] = o["amount"].astype(float)
        self.orders = o
        ev = raw(ctx, "events", brand)
        by_user = dict(
            zip(ids[ids.id_type == "user_id"].id_value, ids[ids.id_type == "user_id"].customer_id, strict=True)
        )
        anon = ids[ids.id_type == "anonymous_id"]
        by_anon = dict(zip(anon.id_value, anon.customer_id, strict=True))
        ev["customer_id"] = [by_user.get(u) or by_anon.get(a) for u, a in zip(ev.user_id, ev.anonymous_id, strict=True)]
        ev = ev[ev.customer_id.notna()].copy()
        p = [_props(v) for v in ev.properties]
        ev["purpose"] = [x.get("purpose") for x in p]
        ev["p_channel"] = [x.get("channel_id") for x in p]
        self.events = ev
        self.spend = raw(ctx, "channel_spend", brand)
        self.channels = raw(ctx, "channels", brand)

    # ---- holdings: (unit, customer, start, end, in_kind, out_kind, channel) rows, plain Python
    def spans(self, by: str, window_days: int = 2) -> list[tuple[Any, ...]]:
        out = []
        transfers = self.rel[self.rel.lost_by == "transfer"]
        for r in self.rel.itertuples():
            moved = str(r.add_way) == "202" or any(
                (t.customer_id == r.customer_id)
                and (t.guide_id != r.guide_id)
                and abs(r.added_at - t.lost_at) <= pd.Timedelta(days=window_days)
                for t in transfers.itertuples()
            )
            end = FAR if pd.isna(r.lost_at) else r.lost_at
            kind = None if pd.isna(r.lost_at) else OUT_OF.get(r.lost_by, "lost_other")
            unit = {"brand": self.brand, "guide": r.guide_id, "store": self.store_of.get(r.guide_id),
                    "touchpoint": self.wecom_tp.get(r.guide_id, f"wecom:{r.guide_id}")}[by]  # fmt: skip
            chan = r.channel_id if isinstance(r.channel_id, str) else "(none)"
            out.append((unit, r.customer_id, r.added_at, end, "moved_in" if moved else "acquired", kind, chan))
        for m in self.gm.itertuples():
            owner = self.owner.get(m.touchpoint_id)
            unit = {
                "brand": self.brand,
                "guide": owner,
                "store": self.store_of.get(owner),
                "touchpoint": m.touchpoint_id,
            }[by]
            end = FAR if pd.isna(m.left_at) else m.left_at
            out.append(
                (unit, m.customer_id, m.joined_at, end, "acquired", None if end == FAR else "left_group", "(group)")
            )
        return [s for s in out if s[0] is not None]

    def islands(self, by: str) -> list[tuple[Any, ...]]:
        groups: dict[tuple[Any, Any], list[tuple[Any, ...]]] = defaultdict(list)
        for s in self.spans(by):
            groups[(s[0], s[1])].append(s)
        out = []
        for ss in groups.values():
            ss.sort(key=lambda s: (s[2], s[3]))
            cur = list(ss[0])
            for s in ss[1:]:
                if s[2] <= cur[3]:
                    if s[3] > cur[3]:
                        cur[3], cur[5] = s[3], s[5]
                else:
                    out.append(tuple(cur))
                    cur = list(s)
            out.append(tuple(cur))
        return [(u, c, a, b, i, o, ch) for u, c, a, b, i, o, ch in out]

    def statement(self, by: str, start: date, end: date) -> dict[Any, dict[str, int]]:
        s, e = day_start(start), day_end(end)
        rows: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
        for unit, _cid, a, b, i, o, _ch in self.islands(by):
            r = rows[unit]
            r["opening"] += int(a <= s < b)
            r["closing"] += int(a <= e < b)
            if s < a <= e:
                r[i] += 1
            if s < b <= e:
                r[o] += 1
        return {u: r for u, r in rows.items() if any(r.values())}

    def reachable(self, at: pd.Timestamp) -> dict[str, set[str]]:
        """Customers held per guide / store, and the brand's set, at an instant."""
        r = self.rel[(self.rel.added_at <= at) & (self.rel.lost_at.isna() | (self.rel.lost_at > at))]
        g = self.gm[(self.gm.joined_at <= at) & (self.gm.left_at.isna() | (self.gm.left_at > at))]
        held: dict[str, set[str]] = defaultdict(set)
        for gid, cid in zip(r.guide_id, r.customer_id, strict=True):
            held[gid].add(cid)
            held[self.store_of[gid]].add(cid)
        for tp, cid in zip(g.touchpoint_id, g.customer_id, strict=True):
            if tp in self.owner:
                held[self.owner[tp]].add(cid)
                held[self.store_of[self.owner[tp]]].add(cid)
        held[BRAND] = set(r.customer_id) | set(g.customer_id)
        return held

    def reached(self, start: date, end: date) -> dict[str, set[str]]:
        """Customers held at some instant of the period, per guide and for the brand."""
        s, e = day_start(start), day_end(end)
        r = self.rel[(self.rel.added_at < e) & (self.rel.lost_at.isna() | (self.rel.lost_at > s))]
        g = self.gm[(self.gm.joined_at < e) & (self.gm.left_at.isna() | (self.gm.left_at > s))]
        held: dict[str, set[str]] = defaultdict(set)
        for gid, cid in zip(r.guide_id, r.customer_id, strict=True):
            held[gid].add(cid)
        for tp, cid in zip(g.touchpoint_id, g.customer_id, strict=True):
            if tp in self.owner:
                held[self.owner[tp]].add(cid)
        held[BRAND] = set(r.customer_id) | set(g.customer_id)
        return held


@pytest.fixture(scope="module")
def R(demo_ctx: Context) -> Raw:
    return Raw(demo_ctx)


PERIODS = [(date(2026, 9, 1), date(2026, 9, 30)), (date(2025, 11, 15), date(2026, 10, 31))]


def test_reachable_matches_pandas(demo_ctx: Context, R: Raw) -> None:
    for day in (date(2026, 10, 31), date(2026, 3, 14)):
        got = ops.reachable(demo_ctx, ADMIN, day)
        want = R.reachable(day_end(day))
        assert got.brand == len(want[BRAND]) > 0
        assert dict(zip(got.guides.guide_id, got.guides.reachable, strict=True)) == {
            g: len(want.get(g, ())) for g in got.guides.guide_id
        }
        assert dict(zip(got.stores.store_id, got.stores.reachable, strict=True)) == {
            s: len(want.get(s, ())) for s in got.stores.store_id
        }
        # guides overlap (a customer in a guide's list and another guide's group): the brand is not their sum
        assert got.brand <= int(got.guides.reachable.sum())


@pytest.mark.parametrize("by", ["brand", "store", "guide", "touchpoint"])
def test_asset_statement_matches_pandas_and_balances(demo_ctx: Context, R: Raw, by: str) -> None:
    for start, end in PERIODS:
        st = ops.asset_statement(demo_ctx, ADMIN, start, end, by)
        got = {r["unit"]: {c: r[c] for c in COLUMNS} for r in st.rows.to_dict("records")}
        assert got == R.statement(by, start, end)
        for r in got.values():  # opening + in − out = closing, row by row
            outs = r["lost_by_customer"] + r["deleted_by_guide"] + r["moved_out"] + r["left_group"] + r["lost_other"]
            assert r["opening"] + r["acquired"] + r["moved_in"] - outs == r["closing"]
        # closing = 客群资产数 at the end of the period
        if by in ("brand", "store", "guide"):
            reach = ops.reachable(demo_ctx, ADMIN, end)
            stores = dict(zip(reach.stores.store_id, reach.stores.reachable, strict=True))
            guides = dict(zip(reach.guides.guide_id, reach.guides.reachable, strict=True))
            table = {"brand": {BRAND: reach.brand}, "store": stores, "guide": guides}[by]
            assert {u: r["closing"] for u, r in got.items()} == {u: n for u, n in table.items() if n}
    # the demo has churn of both kinds and group leavers, but no inheritance
    tot = st.totals()
    assert tot["lost_by_customer"] > tot["deleted_by_guide"] > 0 and tot["acquired"] > 0
    assert tot["moved_in"] == tot["moved_out"] == 0


def test_acquired_by_channel_and_lifecycle_partition(demo_ctx: Context, R: Raw) -> None:
    start, end = PERIODS[0]
    st = ops.asset_statement(demo_ctx, ADMIN, start, end, "brand")
    s, e = day_start(start), day_end(end)
    want: dict[str, int] = defaultdict(int)
    for _u, _c, a, _b, i, _o, ch in R.islands("brand"):
        if s < a <= e and i == "acquired":
            want[ch] += 1
    assert dict(zip(st.by_channel.channel_id, st.by_channel.acquired, strict=True)) == want
    assert int(st.by_channel.acquired.sum()) == st.totals()["acquired"]
    # per lifecycle stage (stage at the close): the stages partition the brand, each row balances
    lc = ops.asset_statement(demo_ctx, ADMIN, start, end, "lifecycle")
    assert lc.totals() == st.totals()
    assert set(lc.rows.unit) <= {"new_no_purchase", "new_purchased", "old_no_purchase", "old_purchased_once",
                                 "old_repurchased", "(none)"}  # fmt: skip
    for r in lc.rows.to_dict("records"):
        outs = sum(r[c] for c in ("lost_by_customer", "deleted_by_guide", "moved_out", "left_group", "lost_other"))
        assert r["opening"] + r["acquired"] + r["moved_in"] - outs == r["closing"]
    new = lc.rows[lc.rows.unit.str.startswith("new")]
    assert int(new.opening.sum()) == 0 and int(new.acquired.sum()) > 0  # new at the close = joined in the period


def _insert(ctx: Context, table: str, rows: list[tuple[Any, ...]]) -> None:
    marks = ", ".join("?" * len(rows[0]))
    for r in rows:
        ctx.warehouse.cursor().execute(f"INSERT INTO {table} VALUES ({marks})", list(r))


def _moves_brand(ctx: Context) -> None:
    """Brand 'mv': six customers handed over between guides in February 2026 (see the comments)."""
    d = datetime
    _insert(ctx, "stores", [("mv", "st1", "一店", "上海"), ("mv", "st2", "二店", "杭州")])
    _insert(ctx, "guides", [("mv", "gA", "甲", "st1", None, True), ("mv", "gB", "乙", "st2", None, True),
                            ("mv", "gC", "丙", "st1", None, True)])  # fmt: skip
    _insert(ctx, "touchpoints", [("mv", "tp_g", "群", "customer_group", "gA")])
    # brand, external_userid, guide, added_at, add_way, state, lost_at, lost_by, channel, source_ref
    _insert(ctx, "relations", [
        ("mv", "e1", "gA", d(2026, 1, 5, 10), "1", "lost", d(2026, 2, 10, 12), "transfer", "ch_x", None),
        ("mv", "e1", "gB", d(2026, 2, 10, 12), "1", "active", None, None, "ch_x", None),  # seamless hand-over
        ("mv", "e2", "gA", d(2026, 1, 6), "1", "lost", d(2026, 2, 11, 9), "transfer", "ch_x", None),
        ("mv", "e2", "gC", d(2026, 2, 12, 8), "1", "active", None, None, "ch_x", None),  # 23 h later
        ("mv", "e3", "gC", d(2026, 2, 15), "202", "active", None, None, None, None),  # assigned by admin
        ("mv", "e4", "gA", d(2026, 1, 7), "1", "lost", d(2026, 2, 20), "customer", "ch_x", None),
        ("mv", "e5", "gB", d(2026, 2, 1, 10), "1", "lost", d(2026, 2, 25), "guide", "ch_y", None),
        ("mv", "e6", "gA", d(2026, 1, 8), "1", "lost", d(2026, 2, 5), "transfer", "ch_x", None),
        ("mv", "e6", "gB", d(2026, 3, 20), "1", "active", None, None, "ch_y", None),  # too late: acquired
    ])  # fmt: skip
    _insert(ctx, "group_members", [("mv", "tp_g", "unionid", "u1", d(2026, 1, 20), d(2026, 2, 15))])
    ids = [("mv", "external_userid", f"e{i}", f"c{i}", None, None) for i in range(1, 7)]
    _insert(ctx, "identities", [*ids, ("mv", "unionid", "u1", "c1", None, None)])


def test_moves_between_guides(ctx: Context) -> None:
    _moves_brand(ctx)
    user = User(0, "mv", "t", "t", Role.ADMIN, None, "zh")
    feb = (date(2026, 2, 1), date(2026, 2, 28))

    def rows(by: str) -> dict[str, dict[str, int]]:
        st = ops.asset_statement(ctx, user, *feb, by=by)
        return {r["unit"]: {c: r[c] for c in COLUMNS if r[c]} for r in st.rows.to_dict("records")}

    assert rows("guide") == {
        # c1 leaves gA's list on the 10th but stays in gA's group until the 15th: one span, ends left_group
        "gA": {"opening": 4, "left_group": 1, "moved_out": 2, "lost_by_customer": 1},
        "gB": {"acquired": 1, "moved_in": 1, "deleted_by_guide": 1, "closing": 1},
        "gC": {"moved_in": 2, "closing": 2},
    }
    # the brand: c1's seamless hand-over is no movement; c2's 23-hour gap is out and in; c6 left for good
    assert rows("brand") == {
        "mv": {"opening": 4, "acquired": 1, "moved_in": 2, "moved_out": 2, "lost_by_customer": 1,
               "deleted_by_guide": 1, "closing": 3},
    }  # fmt: skip
    assert rows("store")["st2"] == {"acquired": 1, "moved_in": 1, "deleted_by_guide": 1, "closing": 1}
    # the same rules written independently over the raw tables
    r = Raw(ctx, "mv")
    for by in ("brand", "store", "guide", "touchpoint"):
        st = ops.asset_statement(ctx, user, *feb, by=by)
        assert {x["unit"]: {c: x[c] for c in COLUMNS} for x in st.rows.to_dict("records")} == r.statement(by, *feb)
    # a shorter transfer window makes c2's new relation an acquisition
    from siyu.analytics.assets import AssetConfig

    st = ops.asset_statement(ctx, user, *feb, by="guide", config=AssetConfig(transfer_window_days=0))
    gc = st.rows.set_index("unit").loc["gC"]
    assert (gc.moved_in, gc.acquired) == (1, 1)


# ------------------------------------------------------------------------------------------------ performance
def _perf_want(R: Raw, start: date, end: date) -> dict[str, tuple[int, int, int, float]]:
    s, e = day_start(start), day_end(end)
    ev = R.events
    touched = set(ev[(ev.event == "Touch Delivered") & (ev.purpose == "broadcast") & (ev.timestamp >= s)
                     & (ev.timestamp < e)].customer_id)  # fmt: skip
    o = R.orders[(R.orders.ordered_at >= s) & (R.orders.ordered_at < e)]
    gmv = o.groupby("customer_id")["amount"].sum()
    out = {}
    for unit, a in R.reached(start, end).items():
        r = a & touched
        b = {c for c in r if c in gmv.index}
        out[unit] = (len(a), len(r), len(b), float(sum(gmv[c] for c in b)))
    return out


@pytest.mark.parametrize("by", ["brand", "guide"])
def test_performance_formula_matches_pandas(demo_ctx: Context, R: Raw, by: str) -> None:
    start, end = PERIODS[0]
    p = ops.performance(demo_ctx, ADMIN, start, end, by)
    want = _perf_want(R, start, end)
    assert len(p.rows) == (1 if by == "brand" else 12)
    for row in p.rows.to_dict("records"):
        a, r, b, g = want[row["unit"]]
        assert (row["reachable"], row["delivered"], row["bought"]) == (a, r, b)
        assert row["gmv"] == pytest.approx(g, abs=0.01)
        assert 0 < b < r < a
        product = row["reachable"] * row["delivery_rate"] * row["conversion_rate"] * row["order_value"]
        assert product == pytest.approx(row["gmv"], rel=1e-12)  # A × R/A × B/R × G/B = G


def test_performance_change_lmdi_adds_up(demo_ctx: Context) -> None:
    ch = ops.performance_change(demo_ctx, ADMIN, "2026-10-01", "2026-10-31", by="guide")
    assert (ch.previous.start, ch.previous.end) == (date(2026, 8, 31), date(2026, 9, 30))
    prev = ch.previous.rows.set_index("unit")
    cur = ch.current.rows.set_index("unit")
    for r in ch.rows.to_dict("records"):
        effects = [r[f"{f}_effect"] for f in ("reachable", "delivery_rate", "conversion_rate", "order_value")]
        assert r["delta"] == pytest.approx(cur.loc[r["unit"], "gmv"] - prev.loc[r["unit"], "gmv"], abs=1e-9)
        assert math.fsum(effects) == pytest.approx(r["delta"], abs=1e-6)
        # an independent float LMDI of the two rows
        x0 = ops.factor_values(prev.loc[r["unit"]].to_dict() | {"reachable": prev.loc[r["unit"], "reachable"]})
        x1 = ops.factor_values(cur.loc[r["unit"]].to_dict() | {"reachable": cur.loc[r["unit"], "reachable"]})
        g0, g1 = math.prod(x0), math.prod(x1)  # type: ignore[arg-type]
        w = (g1 - g0) / (math.log(g1) - math.log(g0)) if g1 != g0 else g1
        assert effects == pytest.approx([w * math.log(b / a) for a, b in zip(x0, x1, strict=True)], rel=1e-9, abs=1e-6)  # type: ignore[operator]
    with pytest.raises(SiyuError) as err:
        ops.performance_change(demo_ctx, ADMIN, "2026-10-01", "2026-10-31", prev_start="2026-09-30",
                               prev_end="2026-09-01")  # fmt: skip
    assert err.value.field == "prev_start"


def _exact_sum(contrib: list[Decimal], before: list[Any], after: list[Any]) -> None:
    def prod(xs: list[Any]) -> Decimal:
        out = Decimal(1)
        for x in xs:
            if x is None or x == 0:
                return Decimal(0)
            out *= Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
        return out

    with localcontext() as c:
        c.prec = 60
        assert abs(sum(contrib) - (prod(after) - prod(before))) < Decimal("1e-30")


def test_lmdi_exact_random() -> None:
    rng = random.Random(4)
    for _ in range(300):
        x0 = [rng.uniform(0.01, 5000) for _ in range(4)]
        x1 = [v * rng.uniform(0.2, 5) for v in x0]
        c = lmdi(x0, x1)
        _exact_sum(c, x0, x1)
        g0, g1 = math.prod(x0), math.prod(x1)
        w = (g1 - g0) / (math.log(g1) - math.log(g0))
        assert [float(v) for v in c] == pytest.approx(
            [w * math.log(b / a) for a, b in zip(x0, x1, strict=True)], rel=1e-9
        )


def test_lmdi_equal_values_and_single_factor() -> None:
    x = [120, 0.5, 0.25, 800.0]
    assert lmdi(x, x) == [0, 0, 0, 0]
    # only the order value changed: the whole change is its contribution
    c = lmdi(x, [120, 0.5, 0.25, 1000.0])
    assert c[:3] == [0, 0, 0] and abs(c[3] - 3000) < Decimal("1e-40")  # G: 12,000 → 15,000
    # offsetting changes with G unchanged: L(G, G) = G, contributions ±G·ln 2, summing to 0
    c = lmdi(x, [240, 0.25, 0.25, 800.0])
    assert abs(c[0] + c[1]) < Decimal("1e-40") and c[2] == c[3] == 0
    assert abs(float(c[0]) - 12000 * math.log(2)) < 1e-9
    _exact_sum(c, x, [240, 0.25, 0.25, 800.0])


def test_lmdi_zeros_are_the_epsilon_limit() -> None:
    # nobody bought before (B0 = 0 → G/B undefined): conversion takes the whole change
    before, after = [100, 0.5, 0, None], [110, 0.6, 0.2, 700.0]
    c = lmdi(before, after)
    assert c == [0, 0, Decimal(9240), 0]  # G1 = 110 × 0.6 × 0.2 × 700
    _exact_sum(c, before, after)
    # the same by the ε-replacement (ε → 0 in Decimal): contributions converge to that split
    with localcontext() as ctx:
        ctx.prec = 80
        eps = Decimal("1e-3000")
        x0 = [Decimal(100), Decimal("0.5"), eps, Decimal("700.0")]
        x1 = [Decimal(110), Decimal("0.6"), Decimal("0.2"), Decimal("700.0")]
        g0, g1 = x0[0] * x0[1] * x0[2] * x0[3], x1[0] * x1[1] * x1[2] * x1[3]
        w = (g1 - g0) / (g1.ln() - g0.ln())
        limit = [w * (b / a).ln() for a, b in zip(x0, x1, strict=True)]
        assert abs(limit[2] - c[2]) / c[2] < Decimal("0.01") and all(abs(v) < c[2] / 100 for v in limit[:2])
    # a new guide (A0 = 0): reachable takes it; a guide who lost everything: reachable gives it back
    assert lmdi([0, None, None, None], [10, 0.5, 0.2, 100.0]) == [Decimal("100.0"), 0, 0, 0]
    assert lmdi([10, 0.5, 0.2, 100.0], [10, 0, None, None]) == [0, Decimal("-100.0"), 0, 0]
    # zero in both periods
    assert lmdi([10, 0, None, None], [0, None, None, None]) == [0, 0, 0, 0]
    with pytest.raises(ValueError):
        lmdi([10, -0.5, 0.2, 1.0], [10, 0.5, 0.2, 1.0])
    with pytest.raises(ValueError):
        lmdi([10, None, 0.2, 1.0], [10, 0.5, 0.2, 1.0])


# ------------------------------------------------------------------------------------------ funnel and KPIs
def test_funnel_matches_pandas(demo_ctx: Context, R: Raw) -> None:
    start, end = date(2026, 1, 1), date(2026, 8, 31)
    s, e = day_start(start), day_end(end)
    ev = R.events
    inv = ev[(ev.event == "Touch Delivered") & (ev.purpose == "lead_in") & (ev.timestamp >= s) & (ev.timestamp < e)]
    first = inv.sort_values("timestamp").groupby("customer_id").first()
    adds = R.rel.groupby("customer_id")["added_at"].apply(list)
    led = {c for c, t in first.timestamp.items() if any(t <= a < t + pd.Timedelta(days=3) for a in adds.get(c, []))}
    rel = R.rel[(R.rel.added_at >= s) & (R.rel.added_at < e)]
    svc = (
        ev[(ev.event == "Message Replied") & (ev.purpose == "service")].groupby("customer_id")["timestamp"].apply(list)
    )
    orders = R.orders.groupby("customer_id")["ordered_at"].apply(list)

    def within(times: list[Any], at: Any, days: int) -> bool:
        return any(at <= x < at + pd.Timedelta(days=days) for x in times)

    served = [within(svc.get(c, []), a, 7) for c, a in zip(rel.customer_id, rel.added_at, strict=True)]
    bought = [within(orders.get(c, []), a, 30) for c, a in zip(rel.customer_id, rel.added_at, strict=True)]
    f = ops.funnel(demo_ctx, ADMIN, start, end, "brand").rows.iloc[0]
    assert (f.invited, f.led_in) == (len(first), len(led))
    assert (f.added, f.served, f.bought) == (len(rel), sum(served), sum(bought))
    # sanity against the generator's targets (demo/check.py: ≈70%, 40-50%, ≈25%)
    assert 0.6 < f.lead_in_rate < 0.8 and 0.35 < f.service_rate < 0.55 and 0.15 < f.monetization_rate < 0.35
    by_channel = ops.funnel(demo_ctx, ADMIN, start, end, "channel").rows.set_index("unit")
    want_inv = first.groupby("p_channel").size()
    assert by_channel.invited.to_dict() == want_inv.to_dict()
    assert by_channel.added.to_dict() == rel.channel_id.value_counts().to_dict()
    guides = ops.funnel(demo_ctx, ADMIN, start, end, "guide").rows
    assert int(guides.added.sum()) == len(rel) and int(guides.bought.sum()) == sum(bought)
    assert guides.lead_in_rate.isna().all()


def test_kpis_match_pandas(demo_ctx: Context, R: Raw) -> None:
    start, end = PERIODS[0]
    s, e = day_start(start), day_end(end)
    k = ops.kpis(demo_ctx, ADMIN, start, end)
    rel = R.rel
    adds = rel[(rel.added_at >= s) & (rel.added_at < e)].channel_id.value_counts()
    spend_days = pd.to_datetime(R.spend.day).dt.date  # spend is kept per brand day already
    sp = R.spend[(spend_days >= start) & (spend_days <= end)]
    expo = sp.groupby("channel_id")["exposures"].sum()
    for r in k.add_rates.to_dict("records"):
        assert r["adds"] == adds.get(r["channel_id"], 0) and r["exposures"] == expo.get(r["channel_id"], 0)
        if r["adds"]:
            assert r["add_rate"] == pytest.approx(adds[r["channel_id"]] / expo[r["channel_id"]])
    parcel = k.add_rates.set_index("channel_id").loc["ch_parcel"]
    assert (parcel.band_low, parcel.band_high) == (0.24, 0.34)
    live = rel[(rel.added_at <= s) & (rel.lost_at.isna() | (rel.lost_at > s))]
    lost = rel[(rel.lost_at > s) & (rel.lost_at <= e) & (rel.lost_by == "customer")]
    loss = k.loss.set_index("unit")
    assert (loss.loc[BRAND, "contacts_at_start"], loss.loc[BRAND, "lost"]) == (len(live), len(lost))
    assert loss.loc["g03", "lost"] == int((lost.guide_id == "g03").sum())
    assert 0 < loss.loc[BRAND, "loss_rate"] < 0.06  # ≈ 3% per 30 days × 85% by the customer
    ev = R.events
    act = set(
        ev[ev.event.isin(["Message Replied", "Message Clicked"]) & (ev.timestamp >= s) & (ev.timestamp < e)].customer_id
    )
    reached = R.reached(start, end)
    inter = k.interaction.set_index("unit")
    for unit in (BRAND, "g01", "g12"):
        assert (inter.loc[unit, "reachable"], inter.loc[unit, "interacted"]) == (
            len(reached[unit]),
            len(reached[unit] & act),
        )


def test_bad_input_names_the_field(demo_ctx: Context) -> None:
    cases = [
        (lambda: ops.asset_statement(demo_ctx, ADMIN, by="region"), "by"),
        (lambda: ops.asset_statement(demo_ctx, ADMIN, "2026-10-31", "2026-10-01"), "start"),
        (lambda: ops.performance(demo_ctx, ADMIN, end="31/10/2026"), "end"),
        (lambda: ops.reachable(demo_ctx, ADMIN, "yesterday"), "as_of"),
        (lambda: ops.funnel(demo_ctx, ADMIN, by="touchpoint"), "by"),
    ]
    for call, field in cases:
        with pytest.raises(SiyuError) as err:
            call()
        assert err.value.field == field, err.value.message


def test_configurations_change_the_figures(demo_ctx: Context, R: Raw) -> None:
    from siyu.analytics.funnel import FunnelConfig
    from siyu.analytics.performance import PerformanceConfig

    start, end = PERIODS[0]
    # reach_basis="start": A = the customers held at the opening = the statement's opening
    p = ops.performance(demo_ctx, ADMIN, start, end, config=PerformanceConfig(reach_basis="start")).rows.iloc[0]
    assert p.reachable == ops.asset_statement(demo_ctx, ADMIN, start, end).totals()["opening"]
    # any touch purpose: lead-in SMS count as delivery too
    wide = ops.performance(demo_ctx, ADMIN, start, end, config=PerformanceConfig(touch_purposes=None)).rows.iloc[0]
    narrow = ops.performance(demo_ctx, ADMIN, start, end).rows.iloc[0]
    assert wide.delivered >= narrow.delivered and wide.reachable == narrow.reachable
    # shorter windows: fewer successes, same cohorts
    base = ops.funnel(demo_ctx, ADMIN, start, end).rows.iloc[0]
    short = FunnelConfig(lead_in_days=1, service_days=2, monetization_days=7, service_purposes=None)
    f = ops.funnel(demo_ctx, ADMIN, start, end, config=short).rows.iloc[0]
    assert (f.invited, f.added) == (base.invited, base.added)
    assert f.led_in <= base.led_in and f.bought < base.bought
    with pytest.raises(ValueError):
        FunnelConfig(service_days=0)
