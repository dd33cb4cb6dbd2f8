"""CLV use cases on a freshly seeded demo brand, checked against independent computation: the summary rebuilt
with pandas from the raw orders, the models called directly, CAC from the acquisition service, segment sets from
the stored predictions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siyu.analytics.base import EXCLUDED_ORDER_STATUSES
from siyu.clv import bgnbd, gamma_gamma, pareto_nbd
from siyu.clv.value import expected_purchases_in, lifetime_value
from siyu.domain.models import Role
from siyu.domain.segment_def import DefinitionError
from siyu.services import brands, segments
from siyu.services.brands import User
from siyu.services.clv import fitting, ltv_cac, predictions, scheduled, validation
from siyu.services.clv.fitting import FitOptions
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.metrics import acquisition
from siyu.stores.state.models import utcnow
from tests.support.brand_days import local
from tests.support.scope import reachable_ids
from tests.support.stores import open_demo

BRAND = "demo"
ADMIN = User(0, BRAND, "admin", "admin", Role.ADMIN, None, "zh")
GUIDE = User(0, BRAND, "guide1", "guide1", Role.GUIDE, "g01", "zh")


@pytest.fixture(scope="module")
def cctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """A small demo brand (1,000 customers) of this module only: fits write to it."""
    from siyu.services.demo import DemoConfig

    c = open_demo(Path(tmp_path_factory.mktemp("clv")) / "data", DemoConfig(customers=1000))
    yield c
    c.close()


def raw_daily(ctx: Context) -> pd.DataFrame:
    """customer_id, day, amount: the brand's paid orders merged per customer and Beijing day (pandas, from raw
    tables)."""
    cur = ctx.warehouse.cursor()
    o = cur.execute("SELECT * FROM orders WHERE brand_id = ?", [BRAND]).df()
    i = cur.execute("SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = ?", [BRAND]).df()
    o = o[~o["status"].isin(EXCLUDED_ORDER_STATUSES)]
    j = o.merge(i, left_on=["customer_ref_type", "customer_ref"], right_on=["id_type", "id_value"])
    j["day"] = local(j["ordered_at"]).dt.normalize()  # the brand's (Beijing) day
    j["amount"] = j["amount"].astype(float)
    return j.groupby(["customer_id", "day"], as_index=False)["amount"].sum()


def ref_summary(ctx: Context, end: date) -> pd.DataFrame:
    """x, t_x, T (weeks), monetary per customer born before ``end`` (T > 0), by the rules of btyd.md."""
    d = raw_daily(ctx)
    e = pd.Timestamp(end)
    d["first"] = d.groupby("customer_id")["day"].transform("min")
    d = d[(d["first"] < e) & (d["day"] <= e)]
    rep = d[d["day"] > d["first"]]
    g = d.groupby("customer_id")
    out = pd.DataFrame({"first": g["first"].first(), "last": g["day"].max()})
    out["x"] = rep.groupby("customer_id").size().reindex(out.index).fillna(0).astype(float)
    out["monetary"] = rep.groupby("customer_id")["amount"].mean().reindex(out.index).fillna(0.0)
    out["t_x"] = (out["last"] - out["first"]).dt.days / 7.0
    out["T"] = (e - out["first"]).dt.days / 7.0
    return out


def ensure_fit(ctx: Context) -> None:
    """Fit the brand with the defaults unless a fit is stored (tests may run alone)."""
    if fitting.latest_fit(ctx, BRAND) is None:
        fitting.fit_brand(ctx, BRAND)


def stored(ctx: Context) -> pd.DataFrame:
    return ctx.warehouse.cursor().execute("SELECT * FROM clv_predictions WHERE brand_id = ?", [BRAND]).df()


def test_stored_predictions_equal_the_models_on_the_raw_summary(cctx: Context) -> None:
    stages: list[str] = []
    f = fitting.fit_brand(cctx, BRAND, FitOptions(months=6, discount_rate=0.12), "t", lambda s, d: stages.append(s))
    assert f["status"] == "done" and f["model"] == "bgnbd" and f["calibration_end"] == "2026-10-31"
    assert stages[0] == "summarising orders" and stages[-1] == "done" and any("gamma_gamma" in s for s in stages)
    ref = ref_summary(cctx, date(2026, 10, 31))
    got = stored(cctx).set_index("customer_id").loc[ref.index]
    assert len(got) == len(ref) == f["customers"]
    for c in ("x", "t_x", "T", "monetary"):
        np.testing.assert_allclose(got[c], ref[c], rtol=1e-12, atol=1e-9)
    x, t_x, T, z = (ref[c].to_numpy() for c in ("x", "t_x", "T", "monetary"))
    trans = bgnbd.fit(x, t_x, T)
    rep = (x > 0) & (z > 0)
    spend = gamma_gamma.fit(x[rep], z[rep])
    assert f["params"] == pytest.approx(trans.params, rel=1e-6) and f["se"] == pytest.approx(trans.se, rel=1e-4)
    assert f["log_likelihood"] == pytest.approx(trans.log_likelihood, rel=1e-10)
    assert f["spend_params"]["p"] == pytest.approx(spend.params["p"], rel=1e-4) and f["repeat_customers"] == rep.sum()
    np.testing.assert_allclose(got["p_alive"], bgnbd.p_alive(trans, x, t_x, T), rtol=1e-6)
    np.testing.assert_allclose(got["expected_purchases"], expected_purchases_in(trans, 6, x, t_x, T), rtol=1e-6)
    np.testing.assert_allclose(got["expected_spend"], gamma_gamma.conditional_expected_spend(spend, x, z), rtol=1e-4)
    np.testing.assert_allclose(got["clv"], lifetime_value(trans, spend, x, t_x, T, z, 6, 0.12), rtol=1e-4)
    assert (got["fit_id"] == f["id"]).all()
    assert fitting.latest_fit(cctx, BRAND)["id"] == f["id"]  # type: ignore[index]


def test_refit_replaces_predictions_and_a_failed_fit_keeps_them(cctx: Context) -> None:
    end = date(2026, 6, 30)
    f = fitting.fit_brand(cctx, BRAND, FitOptions("pareto_nbd", end.isoformat(), 24, 0.0))
    rows = stored(cctx)
    ref = ref_summary(cctx, end)
    assert set(rows["customer_id"]) == set(ref.index) and (rows["fit_id"] == f["id"]).all()
    assert rows.set_index("customer_id").loc[ref.index, "x"].tolist() == ref["x"].tolist()
    x, t_x, T = (ref[c].to_numpy() for c in ("x", "t_x", "T"))
    p = pareto_nbd.fit(x, t_x, T)
    got = rows.set_index("customer_id").loc[ref.index]
    np.testing.assert_allclose(got["p_alive"], pareto_nbd.p_alive(p, x, t_x, T), rtol=1e-5)
    # a fit that fails (no repeat purchase by then) is recorded as failed; the predictions stay
    first = fitting.first_order_day(cctx, BRAND)
    assert first is not None
    with pytest.raises(SiyuError) as err:
        fitting.fit_brand(cctx, BRAND, FitOptions(calibration_end=(first + timedelta(days=1)).isoformat()))
    assert err.value.field in ("calibration_end", "model", "x")
    fits = fitting.list_fits(cctx, BRAND)
    assert fits[0]["status"] == "failed" and fits[0]["error"] == err.value.message
    assert (stored(cctx)["fit_id"] == f["id"]).all() and fitting.latest_fit(cctx, BRAND)["id"] == f["id"]  # type: ignore[index]
    # back to the default fit for the other tests
    fitting.fit_brand(cctx, BRAND)


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        (FitOptions(model="nbd"), "model"),
        (FitOptions(calibration_end="2026-13-01"), "calibration_end"),
        (FitOptions(calibration_end="2020-01-01"), "calibration_end"),
        (FitOptions(months=0), "months"),
        (FitOptions(discount_rate=-0.1), "discount_rate"),
    ],
)
def test_bad_options_name_the_field(cctx: Context, opts: FitOptions, field: str) -> None:
    with pytest.raises(SiyuError) as err:
        fitting.fit_brand(cctx, BRAND, opts)
    assert err.value.field == field


def test_brand_without_orders_and_one_running_fit(cctx: Context) -> None:
    brands.create_brand(cctx, "empty", "Empty")
    with pytest.raises(SiyuError) as err:
        fitting.fit_brand(cctx, "empty")
    assert err.value.field == "brand_id" and "no orders" in err.value.message
    running = fitting.start_fit(cctx, BRAND, FitOptions())
    with pytest.raises(Conflict):
        fitting.start_fit(cctx, BRAND, FitOptions())
    fitting.run_fit(cctx, running)
    with pytest.raises(NotFound):
        fitting.get_fit(cctx, "empty", running)  # another brand's fit is not visible


def test_validation_against_the_raw_holdout(cctx: Context) -> None:
    v = validation.validate(cctx, BRAND)
    first = fitting.first_order_day(cctx, BRAND)
    assert first is not None
    c_end, h_end = date.fromisoformat(v["calibration_end"]), date.fromisoformat(v["holdout_end"])
    assert h_end == date(2026, 10, 31) and c_end == first + timedelta(days=(h_end - first).days * 2 // 3)
    ref = ref_summary(cctx, c_end)
    d = raw_daily(cctx)
    hold = d[(d["day"] > pd.Timestamp(c_end)) & (d["day"] <= pd.Timestamp(h_end))].groupby("customer_id").size()
    ref["holdout"] = hold.reindex(ref.index).fillna(0)
    rows = {r["x"]: r for r in v["by_frequency"]}
    assert sum(r["customers"] for r in rows.values()) == len(ref) == v["errors"]["customers"]
    fit = bgnbd.fit(ref["x"], ref["t_x"], ref["T"])
    weeks = (h_end - c_end).days / 7
    ref["pred"] = bgnbd.conditional_expected_purchases(fit, weeks, ref["x"], ref["t_x"], ref["T"])
    for key, grp in ref.groupby(np.minimum(ref["x"], 7).astype(int)):
        r = rows[f"{key}+" if key == 7 else str(key)]
        assert r["customers"] == len(grp)
        assert r["actual"] == pytest.approx(grp["holdout"].mean())
        assert r["predicted"] == pytest.approx(grp["pred"].mean(), rel=1e-6)
    assert v["errors"]["holdout_actual"] == ref["holdout"].sum()
    # tracking: the actual line ends at every repeat purchase day of the cohort, calibration + holdout
    last = v["tracking"][-1]
    assert last["actual"] == ref["x"].sum() + ref["holdout"].sum()
    assert [r["week"] for r in v["tracking"]] == list(range(1, len(v["tracking"]) + 1))
    assert all(a["predicted"] <= b["predicted"] for a, b in zip(v["tracking"], v["tracking"][1:], strict=False))
    assert v["tracking"][0]["holdout"] is False and last["holdout"] is True
    with pytest.raises(SiyuError) as err:
        validation.validate(cctx, BRAND, calibration_end="2026-10-31")
    assert err.value.field == "holdout_end"
    with pytest.raises(SiyuError) as err:
        validation.validate(cctx, BRAND, model="x")
    assert err.value.field == "model"


def test_ltv_cac_is_clv_of_the_attributed_customers_over_the_acquisition_cac(cctx: Context) -> None:
    ensure_fit(cctx)
    pred = stored(cctx).set_index("customer_id")["clv"]
    end = date(2026, 10, 31)
    start = end - timedelta(days=89)
    acq = acquisition.acquired_customers(cctx, BRAND, start, end, end)
    for by, key in (("channel", "channel_id"), ("guide", "guide_id"), ("campaign", "campaign_id")):
        rep = ltv_cac.report(cctx, ADMIN, by)
        cac = {r[key]: r for r in acquisition.cac_report(cctx, ADMIN, by)["rows"]}
        if by == "channel":  # credited: the lead-in channel and the channel of a first order before joining
            pairs = pd.concat(
                [
                    acq[["customer_id", "lead_in_channel_id"]].set_axis(["customer_id", key], axis=1),
                    acq[["customer_id", "origin_channel_id"]].set_axis(["customer_id", key], axis=1),
                ]
            ).drop_duplicates()
        else:
            pairs = acq[["customer_id", key]]
        assert rep["rows"]
        for r in rep["rows"]:
            group = pairs[pairs[key].isna()] if r[key] is None else pairs[pairs[key] == r[key]]
            total = pred.reindex(group["customer_id"]).fillna(0.0).sum()
            c = cac[r[key]]
            # DuckDB sums in parallel, so two runs of the same CAC query can differ in the last bit
            assert r["cac"] == pytest.approx(c["cac"], rel=1e-12) and r["customers"] == c["customers"]
            if c["customers"]:
                assert r["clv_mean"] == pytest.approx(total / c["customers"])
            if c["cac"]:
                assert r["clv_cac"] == pytest.approx(total / c["customers"] / c["cac"])
                assert r["ltv_total_cac"] == pytest.approx((c["ltv_realised"] + total / c["customers"]) / c["cac"])
    mine = ltv_cac.report(cctx, GUIDE, "guide")
    assert [r["guide_id"] for r in mine["rows"]] == ["g01"]
    with pytest.raises(SiyuError):
        ltv_cac.report(cctx, GUIDE, "channel")
    with pytest.raises(SiyuError) as err:
        ltv_cac.report(cctx, ADMIN, "platforms")
    assert err.value.field == "by"


def test_segment_at_risk_and_valuable(cctx: Context) -> None:
    ensure_fit(cctx)
    rows = stored(cctx)
    pct = (rows["clv"].rank(method="min") - 1) / (len(rows) - 1)
    expect = set(rows[(rows["p_alive"] < 0.3) & (pct >= 0.5)]["customer_id"])
    assert expect  # the demo has lapsed valuable customers
    definition = {
        "kind": "and",
        "conditions": [
            {"kind": "clv", "field": "p_alive", "op": "lt", "value": 0.3},
            {"kind": "clv", "field": "clv_percentile", "op": "gte", "value": 0.5},
        ],
    }
    assert segments.preview(cctx, ADMIN, definition)["count"] == len(expect)
    seg = segments.create_segment(cctx, ADMIN, "流失高价值 win-back", definition)
    got = segments.members(cctx, ADMIN, seg.id, page_size=500)
    assert {m["customer_id"] for m in got["items"]} == expect
    high = {"kind": "clv", "field": "clv", "op": "between", "value": [1000, 1e9]}
    assert segments.preview(cctx, ADMIN, high)["count"] == int((rows["clv"] >= 1000).sum())
    with pytest.raises(DefinitionError) as err:
        segments.preview(cctx, ADMIN, {"kind": "clv", "field": "p_alive", "op": "lt", "value": 3})
    assert "value" in err.value.field
    with pytest.raises(DefinitionError) as err:
        segments.preview(cctx, ADMIN, {"kind": "clv", "field": "ltv", "op": "lt", "value": 3})
    assert "field" in err.value.field


def test_guide_scope_and_reads(cctx: Context) -> None:
    ensure_fit(cctx)
    mine = reachable_ids(cctx, BRAND, "g01")  # a guide's own customers: relations and owned groups
    rows = stored(cctx)
    page = predictions.page(cctx, GUIDE, page_size=500)
    assert page["total"] == len(set(rows["customer_id"]) & mine) > 0
    assert {i["customer_id"] for i in page["items"]} <= mine
    clv = [i["clv"] for i in page["items"]]
    assert clv == sorted(clv, reverse=True)
    other = next(c for c in rows["customer_id"] if c not in mine)
    with pytest.raises(NotFound):
        predictions.customer(cctx, GUIDE, other)
    one = predictions.customer(cctx, ADMIN, other)
    assert one["clv"] == pytest.approx(float(rows.set_index("customer_id").loc[other, "clv"]))
    low = predictions.page(cctx, ADMIN, min_p_alive=0.2, max_p_alive=0.5, sort="p_alive", descending=False)
    assert low["total"] == int(rows["p_alive"].between(0.2, 0.5).sum())
    for kwargs, field in (({"page_size": 501}, "page_size"), ({"sort": "name"}, "sort"), ({"page_no": 0}, "page")):
        with pytest.raises(SiyuError) as err:
            predictions.page(cctx, ADMIN, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field
    ov = predictions.overview(cctx, ADMIN, bins=10)
    assert ov["totals"]["customers"] == len(rows) and sum(b["customers"] for b in ov["histogram"]) == len(rows)
    assert ov["totals"]["at_risk"] == int((rows["p_alive"] < 0.3).sum())
    assert ov["totals"]["clv_total"] == pytest.approx(rows["clv"].sum())
    m = ov["alive_matrix"]
    assert m["T"] == pytest.approx(rows["T"].max()) and len(m["p_alive"]) == len(m["x"])
    assert predictions.overview(cctx, GUIDE)["totals"]["customers"] == page["total"]


def test_scheduled_refit(cctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    fitting.fit_brand(cctx, BRAND)
    assert scheduled.refit_due(cctx, every_days=7) == []  # fitted just now
    later = utcnow() + timedelta(days=8)
    before = fitting.latest_fit(cctx, BRAND)
    assert scheduled.refit_due(cctx, now=later, every_days=7) == [BRAND]
    after = fitting.latest_fit(cctx, BRAND)
    assert after is not None and before is not None and after["id"] != before["id"]
    assert after["created_by"] == "schedule" and after["model"] == before["model"]
    monkeypatch.setenv("SIYU_CLV_REFIT_DAYS", "off")
    assert scheduled.refit_days() == 0 and scheduled.refit_due(cctx, now=later + timedelta(days=30)) == []
    monkeypatch.setenv("SIYU_CLV_REFIT_DAYS", "3")
    assert scheduled.refit_days() == 3
    from siyu.workers.schedule import SCHEDULES

    assert any(s.target == "siyu.services.clv.scheduled:refit_due" for s in SCHEDULES)


def test_clv_fits_table_on_both_state_backends(any_ctx: Context) -> None:
    import sqlalchemy as sa

    from siyu.stores.state.clv_models import ClvFitRow

    with any_ctx.engine.connect() as con:
        columns = {c["name"] for c in sa.inspect(con).get_columns("clv_fits")}
    assert columns == {c.name for c in ClvFitRow.__table__.columns}
    brands.create_brand(any_ctx, "b1", "B1")
    with any_ctx.sessions.begin() as s:
        s.add(ClvFitRow(id="f1", brand_id="b1", model="bgnbd", calibration_end=date(2026, 1, 31), params={"r": 0.5}))
    got = fitting.get_fit(any_ctx, "b1", "f1")
    assert got["params"] == {"r": 0.5} and got["status"] == "running" and got["calibration_end"] == "2026-01-31"
    assert fitting.latest_fit(any_ctx, "b1") is None  # not finished
