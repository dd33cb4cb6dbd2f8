"""Customer value metrics (RFM, AIPL, lifecycle, cohorts) against an independent pandas computation over the raw
warehouse tables, on Online Retail and on the demo brand; the published Online Retail cleaning figures.

Stored times are naive UTC; dates are the brand's local (Beijing, UTC+8) days: "as of d" is Beijing midnight opening
d (``day_start(d)``), and days / months are those of the local wall clock (``tests.support.brand_days``)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from siyu.analytics.aipl import AiplConfig, aipl_flow, aipl_stage, aipl_transitions
from siyu.analytics.cohorts import cohort_table
from siyu.analytics.lifecycle import lifecycle_stage
from siyu.analytics.rfm import rfm_class_summary, rfm_customers
from siyu.services.context import Context
from siyu.services.metrics import tables
from tests.support.brand_days import day_start, local, local_dates

RETAIL_REF = date(2011, 12, 10)
DEMO_END = date(2026, 10, 31)

# written out here, independently of siyu.analytics.rfm: (R high, F high, M high) → class
CLASS_OF = {
    (1, 1, 1): "important_value",
    (1, 0, 1): "important_develop",  # 101 — NOT 重要挽留 (the widely copied snippet is wrong)
    (0, 1, 1): "important_keep",
    (0, 0, 1): "important_win_back",  # 001 — NOT 重要发展
    (1, 1, 0): "general_value",
    (1, 0, 0): "general_develop",
    (0, 1, 0): "general_keep",
    (0, 0, 0): "general_win_back",
}


# --- the independent reference: raw tables + pandas ---------------------------------------------------------


def raw(ctx: Context, name: str, brand: str) -> pd.DataFrame:
    cur = ctx.warehouse.cursor()
    return cur.execute(f"SELECT * FROM {name} WHERE brand_id = ?", [brand]).df()


class Ref:
    """A brand's records mapped to customers with pandas (identities joined by hand)."""

    def __init__(self, ctx: Context, brand: str) -> None:
        ids = raw(ctx, "identities", brand)
        self.cust = {(r.id_type, r.id_value): r.customer_id for r in ids.itertuples()}
        o = raw(ctx, "orders", brand)
        o = o[~o["status"].isin(["refunded", "cancelled"])].copy()
        o["customer_id"] = [self.cust.get(k) for k in zip(o["customer_ref_type"], o["customer_ref"], strict=True)]
        o["amount"] = o["amount"].astype(float)
        self.orders = o[o["customer_id"].notna()]
        rel = raw(ctx, "relations", brand)
        rel["customer_id"] = [self.cust.get(("external_userid", v)) for v in rel["external_userid"]]
        self.relations = rel[rel["customer_id"].notna()]
        gm = raw(ctx, "group_members", brand)
        gm["customer_id"] = [self.cust.get(k) for k in zip(gm["id_type"], gm["id_value"], strict=True)]
        self.groups = gm[gm["customer_id"].notna()]
        tp = raw(ctx, "touchpoints", brand)
        self.group_owner = {str(k): v for k, v in zip(tp["touchpoint_id"], tp["guide_id"], strict=True)}
        ev = raw(ctx, "events", brand)[["type", "event", "user_id", "anonymous_id", "timestamp"]]
        by_user = [self.cust.get(("user_id", v)) for v in ev["user_id"]]
        by_anon = [self.cust.get(("anonymous_id", v)) for v in ev["anonymous_id"]]
        ev["customer_id"] = [u if u is not None else a for u, a in zip(by_user, by_anon, strict=True)]
        self.events = ev[ev["customer_id"].notna()]

    def guide_customers(self, guide_id: str) -> set[str]:
        """A guide's reachable customers: active relations ∪ current members of the groups they own."""
        r, g = self.relations, self.groups
        owned = [t for t, owner in self.group_owner.items() if owner == guide_id]
        mine = g[g["touchpoint_id"].isin(owned) & g["left_at"].isna()]
        return set(r[(r["state"] == "active") & (r["guide_id"] == guide_id)]["customer_id"]) | set(mine["customer_id"])

    def orders_before(self, as_of: date, window: int | None = None) -> pd.DataFrame:
        o = self.orders[self.orders["ordered_at"] < day_start(as_of)]
        if window is not None:
            o = o[o["ordered_at"] >= day_start(as_of - timedelta(days=window))]
        return o

    def joined(self) -> pd.Series:
        a = self.relations.groupby("customer_id")["added_at"].min()
        b = self.groups.groupby("customer_id")["joined_at"].min()
        return pd.concat([a, b], axis=1).min(axis=1)


def ref_rfm(ref: Ref, as_of: date, window: int | None = None) -> pd.DataFrame:
    o = ref.orders_before(as_of, window)
    g = o.groupby("customer_id").agg(last=("ordered_at", "max"), f=("order_id", "nunique"), m=("amount", "sum"))
    g["r"] = [(as_of - d).days for d in local_dates(g["last"])]  # local day of the last order → as_of
    g["rh"] = (g["r"] <= g["r"].mean()).astype(int)
    g["fh"] = (g["f"] >= g["f"].mean()).astype(int)
    g["mh"] = (g["m"] >= g["m"].mean()).astype(int)
    g["cls"] = [CLASS_OF[k] for k in zip(g["rh"], g["fh"], g["mh"], strict=True)]
    n = len(g)
    for col, key in (("rs", -g["r"]), ("fs", g["f"]), ("ms", g["m"])):
        pr = (key.rank(method="min") - 1) / (n - 1)
        g[col] = np.minimum(5, 1 + np.floor(pr * 5)).astype(int)
    return g


def ref_aipl(
    ref: Ref, as_of: date, ai_days: int = 15, p_days: int = 365, l_days: int = 365, l_min: int = 2, pages: bool = True
) -> pd.Series:
    """Highest stage (the default event sets; windows as given), written out by hand."""
    end = day_start(as_of)

    def since(days: int) -> pd.Timestamp:
        return day_start(as_of - timedelta(days=days))

    ev = ref.events[(ref.events["timestamp"] < end)]
    lvl: dict[str, int] = {}

    def put(ids: Any, level: int) -> None:
        for c in set(ids):
            lvl[c] = max(lvl.get(c, 0), level)

    e15 = ev[ev["timestamp"] >= since(ai_days)]
    touched = (e15["type"] == "track") & (e15["event"] == "Touch Delivered")
    put(e15[touched | ((e15["type"] == "page") & pages)].customer_id, 1)
    i_names = {"Message Replied", "Message Clicked", "Coupon Claimed", "Product Viewed", "Followed"}
    put(e15[(e15["type"] == "track") & e15["event"].isin(i_names)].customer_id, 2)
    r = ref.relations
    put(r[(r["added_at"] >= since(ai_days)) & (r["added_at"] < end)].customer_id, 2)
    gm = ref.groups
    put(gm[(gm["joined_at"] >= since(ai_days)) & (gm["joined_at"] < end)].customer_id, 2)
    put(ref.orders_before(as_of, p_days).customer_id, 3)
    n = ref.orders_before(as_of, l_days).groupby("customer_id")["order_id"].nunique()
    put(n[n >= l_min].index, 4)
    e365 = ev[(ev["timestamp"] >= since(l_days)) & (ev["type"] == "track")]
    put(e365[e365["event"].isin({"Product Reviewed", "Product Shared"})].customer_id, 4)
    return pd.Series({c: "AIPL"[v - 1] for c, v in lvl.items()}, name="stage")


def ref_lifecycle(ref: Ref, as_of: date, new_days: int = 30) -> pd.Series:
    j = ref.joined()
    j = j[j < day_start(as_of)]
    n = ref.orders_before(as_of).groupby("customer_id")["order_id"].nunique()
    out = {}
    for c, at in j.items():
        k = int(n.get(c, 0))
        if at >= day_start(as_of - timedelta(days=new_days)):
            out[c] = "new_no_purchase" if k == 0 else "new_purchased"
        else:
            out[c] = "old_no_purchase" if k == 0 else "old_purchased_once" if k == 1 else "old_repurchased"
    return pd.Series(out, name="stage")


def ref_cohorts(ref: Ref, as_of: date, first_order: bool) -> pd.DataFrame:
    o = ref.orders_before(as_of)
    if first_order:
        start = o.groupby("customer_id")["ordered_at"].min()
    else:
        start = ref.joined()
        start = start[start < day_start(as_of)]
    start = local(start)  # cohort = the local month
    cm = start.dt.year * 12 + start.dt.month - 1
    last = as_of - timedelta(days=1)
    last_idx = last.year * 12 + last.month - 1
    o = o[o["customer_id"].isin(cm.index)].copy()
    at = local(o["ordered_at"])
    o["k"] = at.dt.year * 12 + at.dt.month - 1 - o["customer_id"].map(cm)
    o = o[o["k"] >= 0]
    o["c"] = o["customer_id"].map(cm)
    rows = []
    for c, size in cm.value_counts().sort_index().items():
        cum = 0.0
        oc = o[o["c"] == c]
        for k in range(last_idx - c + 1):
            ok = oc[oc["k"] == k]
            cum += ok["amount"].sum()
            rows.append((c, k, size, ok["customer_id"].nunique(), cum))
    return pd.DataFrame(rows, columns=["c", "k", "size", "active", "cum"])


# --- Online Retail --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retail(retail_ctx: Context) -> tuple[Context, Ref]:
    return retail_ctx, Ref(retail_ctx, "retail")


def _got_rfm(ctx: Context, brand: str, as_of: date, window: int | None = None) -> pd.DataFrame:
    return rfm_customers(tables(ctx, brand), as_of, window).to_pyarrow().to_pandas().set_index("customer_id")


def test_retail_published_cleaning_figures(retail: tuple[Context, Ref]) -> None:
    ctx, _ = retail
    got = _got_rfm(ctx, "retail", RETAIL_REF)
    assert len(got) == 4338
    assert round(float(got["monetary"].sum()), 2) == 8911407.90
    assert int(raw(ctx, "order_lines", "retail").shape[0]) == 397884


def _check_rfm(got: pd.DataFrame, exp: pd.DataFrame) -> None:
    assert set(got.index) == set(exp.index)
    got = got.loc[exp.index]
    assert (got["recency_days"].to_numpy() == exp["r"].to_numpy()).all()
    assert (got["frequency"].to_numpy() == exp["f"].to_numpy()).all()
    assert np.allclose(got["monetary"].to_numpy(), exp["m"].to_numpy(), atol=1e-6)
    assert (got["r_high"].astype(int).to_numpy() == exp["rh"].to_numpy()).all()
    assert (got["f_high"].astype(int).to_numpy() == exp["fh"].to_numpy()).all()
    assert (got["m_high"].astype(int).to_numpy() == exp["mh"].to_numpy()).all()
    assert (got["rfm_class"].to_numpy() == exp["cls"].to_numpy()).all()
    for a, b in (("r_score", "rs"), ("f_score", "fs"), ("m_score", "ms")):
        assert (got[a].to_numpy() == exp[b].to_numpy()).all(), a
    assert len(set(exp["cls"])) == 8  # every class is populated: the mapping is really exercised


@pytest.mark.parametrize("window", [None, 90])
def test_retail_rfm_matches_pandas(retail: tuple[Context, Ref], window: int | None) -> None:
    ctx, ref = retail
    _check_rfm(_got_rfm(ctx, "retail", RETAIL_REF, window), ref_rfm(ref, RETAIL_REF, window))


def test_retail_class_summary_and_value_share(retail: tuple[Context, Ref]) -> None:
    ctx, ref = retail
    exp = ref_rfm(ref, RETAIL_REF)
    got = rfm_class_summary(rfm_customers(tables(ctx, "retail"), RETAIL_REF)).execute().set_index("rfm_class")
    e = exp.groupby("cls").agg(n=("m", "size"), m=("m", "sum"))
    assert got["customers"].to_dict() == e["n"].to_dict()
    share = e["m"] / e["m"].sum()
    for k, v in share.items():
        assert math.isclose(got.loc[k, "value_share"], v, rel_tol=1e-9)
    assert math.isclose(got["value_share"].sum(), 1.0)


def test_retail_cohorts_by_first_order(retail: tuple[Context, Ref]) -> None:
    ctx, ref = retail
    got = cohort_table(tables(ctx, "retail"), RETAIL_REF, basis="first_order").execute()
    exp = ref_cohorts(ref, RETAIL_REF, first_order=True)
    assert len(got) == len(exp) == 13 * 14 // 2  # 13 cohorts Dec 2010 … Dec 2011
    assert got["cohort_size"].groupby(got["cohort_month"]).first().sum() == 4338
    assert (got["active"].to_numpy() == exp["active"].to_numpy()).all()
    assert np.allclose(got["cumulative_revenue"].to_numpy(), exp["cum"].to_numpy())
    last = got.groupby("cohort_month")["cumulative_revenue"].last().sum()
    assert round(float(last), 2) == 8911407.90


# --- demo brand -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_ctx: Context) -> tuple[Context, Ref]:
    return demo_ctx, Ref(demo_ctx, "demo")


@pytest.mark.parametrize("as_of,window", [(DEMO_END, None), (DEMO_END, 365), (date(2026, 3, 15), 180)])
def test_demo_rfm_matches_pandas(demo: tuple[Context, Ref], as_of: date, window: int | None) -> None:
    ctx, ref = demo
    _check_rfm(_got_rfm(ctx, "demo", as_of, window), ref_rfm(ref, as_of, window))


@pytest.mark.parametrize("as_of", [DEMO_END, date(2026, 2, 1)])
def test_demo_aipl_matches_pandas(demo: tuple[Context, Ref], as_of: date) -> None:
    ctx, ref = demo
    got = aipl_stage(tables(ctx, "demo"), as_of).execute().set_index("customer_id")["stage"]
    exp = ref_aipl(ref, as_of)
    assert got.sort_index().to_dict() == exp.sort_index().to_dict()
    assert set(exp) == {"A", "I", "P", "L"}


def test_demo_aipl_flow_matches_pandas(demo: tuple[Context, Ref]) -> None:
    ctx, ref = demo
    d1, d2 = date(2026, 9, 1), DEMO_END
    got = aipl_flow(aipl_transitions(tables(ctx, "demo"), d1, d2)).execute()
    a, b = ref_aipl(ref, d1), ref_aipl(ref, d2)
    both = pd.concat([a.rename("f"), b.rename("t")], axis=1).fillna("none")
    exp = both.groupby(["f", "t"]).size()
    assert {(r.from_stage, r.to_stage): r.customers for r in got.itertuples()} == exp.to_dict()
    assert ("P", "none") in exp.index and ("none", "I") in exp.index  # drop-outs and entries are there


def test_aipl_config_matches_pandas(demo: tuple[Context, Ref]) -> None:
    """Other windows (P shorter than L: two order passes), a higher L threshold, no page views."""
    ctx, ref = demo
    t = tables(ctx, "demo")
    cfg = AiplConfig(a_days=7, i_days=7, p_days=90, l_days=400, l_min_orders=4, a_page_views=False)
    got = aipl_stage(t, DEMO_END, cfg).execute().set_index("customer_id")["stage"]
    exp = ref_aipl(ref, DEMO_END, ai_days=7, p_days=90, l_days=400, l_min=4, pages=False)
    assert got.sort_index().to_dict() == exp.sort_index().to_dict()
    assert (exp == "L").sum() != (ref_aipl(ref, DEMO_END) == "L").sum()  # the configuration changes the result
    with pytest.raises(ValueError):
        AiplConfig(a_days=0)


@pytest.mark.parametrize("as_of,new_days", [(DEMO_END, 30), (date(2026, 1, 10), 60)])
def test_demo_lifecycle_matches_pandas(demo: tuple[Context, Ref], as_of: date, new_days: int) -> None:
    ctx, ref = demo
    got = lifecycle_stage(tables(ctx, "demo"), as_of, new_days).execute().set_index("customer_id")["stage"]
    exp = ref_lifecycle(ref, as_of, new_days)
    assert got.sort_index().to_dict() == exp.sort_index().to_dict()
    assert len(set(exp)) == 5


def test_demo_cohorts_match_pandas(demo: tuple[Context, Ref]) -> None:
    ctx, ref = demo
    got = cohort_table(tables(ctx, "demo"), DEMO_END).execute()
    exp = ref_cohorts(ref, DEMO_END, first_order=False)
    assert len(got) == len(exp)
    assert (got["cohort_size"].to_numpy() == exp["size"].to_numpy()).all()
    assert (got["active"].to_numpy() == exp["active"].to_numpy()).all()
    assert np.allclose(got["cumulative_revenue"].to_numpy(), exp["cum"].to_numpy())
    assert np.allclose(got["retention"].to_numpy(), (exp["active"] / exp["size"]).to_numpy())
    by_ch = cohort_table(tables(ctx, "demo"), DEMO_END, by_channel=True).execute()
    tot = by_ch.groupby(["cohort_month", "months_since"])[["cohort_size", "active", "cumulative_revenue"]].sum()
    plain = got.set_index(["cohort_month", "months_since"])
    assert (tot["cohort_size"] == plain["cohort_size"]).all() and (tot["active"] == plain["active"]).all()
    assert np.allclose(tot["cumulative_revenue"], plain["cumulative_revenue"])
