"""CAC/ROI, guide KPIs, drill-down and baseline series against independent pandas computations over the raw
tables of the demo brand; the robust band on a constructed series; API scope and CLI.

Stored times are naive UTC; periods and days are the brand's local (Beijing, UTC+8) days: a period start..end is
[``day_start(start)``, ``day_end(end)``), "up to as_of" ends at ``day_end(as_of)``, and a daily series buckets the
local day of each record (``tests.support.brand_days``).  Spend is recorded per local day already (a date)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.demo.seed import ensure_logins
from siyu.services.metrics import acquisition, anomalies, guides
from siyu.services.metrics.anomalies import BandConfig, robust_band
from tests.support.brand_days import day_end, day_start, local
from tests.support.live import live_server
from tests.support.scope import reachable_ids

BRAND = "demo"
START, END, AS_OF = date(2026, 8, 1), date(2026, 10, 31), date(2026, 10, 31)
ADMIN = User(0, BRAND, "t", "t", Role.ADMIN, None, "zh")
EXCLUDED = ("refunded", "cancelled")


def raw(ctx: Context, name: str) -> pd.DataFrame:
    """A raw warehouse table of the demo brand as pandas (no engine code)."""
    df = ctx.warehouse.ibis.table(name).execute()
    return df[df["brand_id"] == BRAND].copy()


class Raw:
    """Independent pandas reconstruction of what the metrics need."""

    def __init__(self, ctx: Context) -> None:
        ids = raw(ctx, "identities")
        rel = raw(ctx, "relations")
        ext = ids[ids.id_type == "external_userid"][["id_value", "customer_id"]]
        self.rel = rel.merge(ext, left_on="external_userid", right_on="id_value")
        gm = raw(ctx, "group_members")
        self.gm = gm.merge(ids[["id_type", "id_value", "customer_id"]], on=["id_type", "id_value"])
        o = raw(ctx, "orders")
        o = o[~o.status.isin(EXCLUDED)]
        o = o.merge(
            ids[["id_type", "id_value", "customer_id"]],
            left_on=["customer_ref_type", "customer_ref"],
            right_on=["id_type", "id_value"],
        )
        o["amount"] = o["amount"].astype(float)
        self.orders = o
        self.spend = raw(ctx, "channel_spend")
        self.spend["spend"] = self.spend["spend"].astype(float)
        self.channels = raw(ctx, "channels")
        self.guides = raw(ctx, "guides")
        self.customers = raw(ctx, "customers")
        self.touchpoints = raw(ctx, "touchpoints")
        self.events = raw(ctx, "events")

    def acquired(self, start: date, end: date) -> pd.DataFrame:
        first_rel = (
            self.rel.sort_values("added_at", kind="stable").drop_duplicates("customer_id").set_index("customer_id")
        )
        first_grp = self.gm.groupby("customer_id")["joined_at"].min()
        j = pd.DataFrame({"rel_at": first_rel["added_at"]}).join(first_grp.rename("grp_at"), how="outer")
        j["joined_at"] = j[["rel_at", "grp_at"]].min(axis=1)
        j["lead"] = first_rel["channel_id"]
        j["guide_id"] = first_rel["guide_id"]
        j["source_ref"] = first_rel["source_ref"]
        lo, hi = day_start(start), day_end(end)
        j = j[(j.joined_at >= lo) & (j.joined_at < hi)].copy()
        fo = (
            self.orders.sort_values("ordered_at", kind="stable").drop_duplicates("customer_id").set_index("customer_id")
        )
        j = j.join(fo[["ordered_at", "channel_id"]].rename(columns={"channel_id": "fo_channel"}))
        before = j.ordered_at.notna() & (j.ordered_at < j.joined_at) & j.fo_channel.notna()
        j["origin"] = np.where(before, j.fo_channel, j.lead)
        props = self.events.set_index("message_id")["properties"].dropna()
        camp = props.map(lambda p: json.loads(p).get("campaign_id") if isinstance(p, str) else p.get("campaign_id"))
        j["campaign_id"] = j["source_ref"].map(camp.dropna())
        return j

    def revenue(self, as_of: date) -> pd.Series:
        o = self.orders[self.orders.ordered_at < day_end(as_of)]
        return o.groupby("customer_id")["amount"].sum()


@pytest.fixture(scope="module")
def R(demo_ctx: Context) -> Raw:
    return Raw(demo_ctx)


def _credits(acq: pd.DataFrame) -> pd.DataFrame:
    a = pd.DataFrame({"customer_id": acq.index, "channel_id": acq["lead"].to_numpy()})
    b = pd.DataFrame({"customer_id": acq.index, "channel_id": acq["origin"].to_numpy()})
    return pd.concat([a, b]).dropna().drop_duplicates()


def test_cac_roi_by_channel_platform_and_total(demo_ctx: Context, R: Raw) -> None:
    acq = R.acquired(START, END)
    rev = R.revenue(AS_OF)
    cred = _credits(acq)
    cred["revenue"] = cred.customer_id.map(rev).fillna(0.0)
    sp = (
        R.spend[(R.spend.day >= pd.Timestamp(START)) & (R.spend.day <= pd.Timestamp(END))]
        .groupby("channel_id")["spend"]
        .sum()
    )

    got = acquisition.cac_report(demo_ctx, ADMIN, "channel", START, END, AS_OF)
    rows = {r["channel_id"]: r for r in got["rows"]}
    assert set(rows) == set(R.channels.channel_id)
    for ch, r in rows.items():
        mine = cred[cred.channel_id == ch]
        n, revenue, spend = mine.customer_id.nunique(), mine.revenue.sum(), sp.get(ch, 0.0)
        assert r["customers"] == n and r["spend"] == pytest.approx(spend) and r["revenue"] == pytest.approx(revenue)
        assert r["cac"] == pytest.approx(spend / n)
        assert r["roi"] == pytest.approx((revenue - spend) / spend)
        assert r["ltv_cac"] == pytest.approx((revenue / n) / (spend / n))
    # the demo's published cost per contact: parcel cards < ¥3, AI call + SMS < ¥2
    assert rows["ch_parcel"]["cac"] < 3 and rows["ch_aicall"]["cac"] < 2

    total = got["total"]
    n = len(acq)
    revenue = acq.index.to_series().map(rev).fillna(0.0).sum()
    assert total["customers"] == n and total["spend"] == pytest.approx(sp.sum())
    assert total["cac"] == pytest.approx(sp.sum() / n)
    assert total["roi"] == pytest.approx((revenue - sp.sum()) / sp.sum())
    assert total["ltv_realised"] == pytest.approx(revenue / n)

    plat = {r["kind"]: r for r in acquisition.cac_report(demo_ctx, ADMIN, "platform", START, END, AS_OF)["rows"]}
    kinds = R.channels.set_index("channel_id")["kind"]
    ck = cred.assign(kind=cred.channel_id.map(kinds))
    for kind, r in plat.items():
        mine = ck[ck.kind == kind].drop_duplicates(["customer_id"])
        assert r["customers"] == len(mine)
        assert r["spend"] == pytest.approx(sp[sp.index.map(kinds) == kind].sum())
        assert r["revenue"] == pytest.approx(mine.revenue.sum())


def test_cac_by_guide_and_campaign_allocates_channel_spend(demo_ctx: Context, R: Raw) -> None:
    acq = R.acquired(START, END)
    rev = R.revenue(AS_OF)
    cred = _credits(acq)
    sp = (
        R.spend[(R.spend.day >= pd.Timestamp(START)) & (R.spend.day <= pd.Timestamp(END))]
        .groupby("channel_id")["spend"]
        .sum()
    )
    cac = sp / cred.groupby("channel_id").customer_id.nunique()
    cost = cred.assign(c=cred.channel_id.map(cac)).groupby("customer_id")["c"].sum()
    acq = acq.assign(cost=acq.index.map(cost).fillna(0.0), revenue=acq.index.map(rev).fillna(0.0))
    got = acquisition.cac_report(demo_ctx, ADMIN, "guide", START, END, AS_OF)["rows"]
    exp = acq.groupby("guide_id", dropna=False).agg(spend=("cost", "sum"), n=("cost", "size"), rev=("revenue", "sum"))
    assert len(got) == len(exp)
    for r in got:
        e = exp.loc[r["guide_id"] if r["guide_id"] is not None else np.nan]
        assert r["customers"] == e.n and r["spend"] == pytest.approx(e.spend) and r["revenue"] == pytest.approx(e.rev)
        assert r["roi"] == pytest.approx((e.rev - e.spend) / e.spend)
    # allocation: the guides' spend adds up to the spend of the channels that acquired someone
    assert sum(r["spend"] for r in got) == pytest.approx(sp[sp.index.isin(cred.channel_id)].sum())
    camp = acquisition.cac_report(demo_ctx, ADMIN, "campaign", START, END, AS_OF)["rows"]
    exp_c = acq.groupby("campaign_id", dropna=False)["cost"].agg(["sum", "size"])
    assert sorted((r["customers"], round(r["spend"], 4)) for r in camp) == sorted(
        (int(n), round(s, 4)) for s, n in exp_c.itertuples(index=False)
    )


def test_guide_leaderboard_and_drill_down(demo_ctx: Context, R: Raw) -> None:
    s, e, a = date(2026, 10, 1), date(2026, 10, 31), date(2026, 10, 31)
    close = day_end(a)
    lo, hi = day_start(s), day_end(e)
    rel = R.rel
    active = rel[(rel.added_at <= close) & (rel.lost_at.isna() | (rel.lost_at > close))][["guide_id", "customer_id"]]
    gm = R.gm[(R.gm.joined_at <= close) & (R.gm.left_at.isna() | (R.gm.left_at > close))]
    owned = R.touchpoints.dropna(subset=["guide_id"])[["touchpoint_id", "guide_id"]]
    grp = gm.merge(owned, on="touchpoint_id")[["guide_id", "customer_id"]]
    reach = pd.concat([active, grp]).drop_duplicates()
    o = R.orders[(R.orders.ordered_at >= lo) & (R.orders.ordered_at < hi) & R.orders.guide_id.notna()]
    new = rel[(rel.added_at >= lo) & (rel.added_at < hi)]

    board = guides.leaderboard(demo_ctx, ADMIN, s, e, a)
    assert [r["rank"] for r in board["rows"]] == list(range(1, 13))
    assert [r["gmv"] for r in board["rows"]] == sorted((r["gmv"] for r in board["rows"]), reverse=True)
    for r in board["rows"]:
        g = r["guide_id"]
        mine = o[o.guide_id == g]
        assert r["reachable"] == reach[reach.guide_id == g].customer_id.nunique()
        assert r["new_customers"] == new[new.guide_id == g].customer_id.nunique()
        assert r["conversions"] == mine.customer_id.nunique() and r["orders"] == len(mine)
        assert r["gmv"] == pytest.approx(mine.amount.sum())
        assert r["task_completion"] is None
    st = guides.leaderboard(demo_ctx, ADMIN, s, e, a, store_id="st_hz", sort="reachable")["rows"]
    assert {r["store_id"] for r in st} == {"st_hz"} and len(st) == 4
    assert [r["reachable"] for r in st] == sorted((r["reachable"] for r in st), reverse=True)

    drill = guides.guide_customers(demo_ctx, ADMIN, "g02", s, e, a)
    rows = drill["rows"]
    mine = set(reach[reach.guide_id == "g02"].customer_id)
    assert {r["customer_id"] for r in rows} == mine
    upto = R.orders[R.orders.ordered_at < close]
    phones = R.customers.set_index("customer_id")["phone"]
    for r in rows[:40]:
        co = upto[upto.customer_id == r["customer_id"]]
        per = co[(co.ordered_at >= lo) & (co.ordered_at < hi)]
        assert r["orders"] == len(per) and r["gmv"] == pytest.approx(per.amount.sum())
        assert r["guide_gmv"] == pytest.approx(per[per.guide_id == "g02"].amount.sum())
        assert r["guide_name"] == R.guides.set_index("guide_id").name["g02"]
        assert r["phone"] == phones[r["customer_id"]]  # admin: unmasked
    op = User(0, BRAND, "o", "o", Role.OPERATOR, None, "zh")
    masked = guides.guide_customers(demo_ctx, op, "g02", s, e, a)["rows"][0]["phone"]
    assert "****" in masked and masked != rows[0]["phone"]


def test_daily_series_match_raw(demo_ctx: Context, R: Raw) -> None:
    s, e = date(2026, 9, 1), date(2026, 10, 31)
    idx = pd.date_range(s, e)
    o = R.orders.copy()
    o["day"] = local(o.ordered_at).dt.normalize()
    raw_orders = raw(demo_ctx, "orders")
    raw_orders = raw_orders[~raw_orders.status.isin(EXCLUDED)]
    raw_orders["day"] = local(raw_orders.ordered_at).dt.normalize()
    exp = raw_orders.groupby("day").size().reindex(idx, fill_value=0)
    got = anomalies.daily_values(demo_ctx, BRAND, "orders", s, e)
    assert got.to_numpy().tolist() == exp.astype(float).to_numpy().tolist()
    rel = raw(demo_ctx, "relations")
    lost = rel.dropna(subset=["lost_at"])
    exp_l = lost.groupby(local(lost.lost_at).dt.normalize()).size().reindex(idx, fill_value=0)
    assert anomalies.daily_values(demo_ctx, BRAND, "losses", s, e).tolist() == exp_l.astype(float).tolist()
    p = rel[rel.channel_id == "ch_parcel"]
    exp_p = p.groupby(local(p.added_at).dt.normalize()).size().reindex(idx, fill_value=0)
    got_p = anomalies.daily_values(demo_ctx, BRAND, "new_contacts", s, e, "ch_parcel")
    assert got_p.tolist() == exp_p.astype(float).tolist()
    ev = raw(demo_ctx, "events")
    ev = ev[ev.event.isin(["Message Replied", "Message Clicked", "Coupon Claimed"])]
    exp_i = ev.groupby(local(ev.timestamp).dt.normalize()).size().reindex(idx, fill_value=0)
    assert anomalies.daily_values(demo_ctx, BRAND, "interactions", s, e).tolist() == exp_i.astype(float).tolist()


def test_robust_band_flags_a_known_spike_and_drop() -> None:
    rng = np.random.default_rng(7)
    days = pd.date_range("2026-01-01", "2026-04-30")
    weekday_level = np.array([100, 100, 100, 100, 120, 160, 150], dtype=float)
    values = pd.Series(weekday_level[days.day_of_week] + rng.integers(-5, 6, len(days)), index=days)
    spike, drop = pd.Timestamp("2026-04-10"), pd.Timestamp("2026-04-18")
    values[spike] = values[spike] + 200
    values[drop] = 0
    frame = robust_band(values, date(2026, 3, 1), date(2026, 4, 30))
    flagged = frame[frame.flagged]
    assert list(flagged.day) == [spike.date(), drop.date()]
    row = frame.set_index("day").loc[spike.date()]
    hist = [values[spike - pd.Timedelta(days=7 * k)] for k in range(1, 9)]
    med = float(np.median(hist))
    mad = float(np.median(np.abs(np.array(hist) - med)))
    scale = max(1.4826 * mad, 1.0, 0.05 * med)
    assert row["median"] == med and row["z"] == pytest.approx((values[spike] - med) / scale)
    assert row["upper"] == pytest.approx(med + 3 * scale)
    assert frame.set_index("day").loc[drop.date(), "z"] < -3
    # weekday seasonality is not an anomaly: the busy Saturdays stay inside their own band
    assert not frame[(pd.to_datetime(frame.day).dt.day_of_week == 5) & (frame.day != drop.date())].flagged.any()
    # a flat history (MAD = 0) uses the floor instead of dividing by zero
    flat = pd.Series(10.0, index=days)
    flat[pd.Timestamp("2026-04-30")] = 11
    last = robust_band(flat, date(2026, 4, 30), date(2026, 4, 30)).iloc[0]
    assert last["mad"] == 0 and last["scale"] == 1.0 and last["z"] == 1.0 and not last["flagged"]


def test_bad_input_names_the_field(demo_ctx: Context) -> None:
    from siyu.services.errors import SiyuError

    cases = [
        (lambda: acquisition.cac_report(demo_ctx, ADMIN, "region"), "by"),
        (lambda: acquisition.cac_report(demo_ctx, ADMIN, "channel", "2026-10-31", "2026-10-01"), "start"),
        (lambda: acquisition.cac_report(demo_ctx, ADMIN, "channel", None, "2026-10-x"), "end"),
        (lambda: guides.leaderboard(demo_ctx, ADMIN, store_id="st_nowhere"), "store_id"),
        (lambda: guides.leaderboard(demo_ctx, ADMIN, sort="height"), "sort"),
        (lambda: anomalies.band_series(demo_ctx, ADMIN, "sales"), "step"),
        (lambda: anomalies.band_series(demo_ctx, ADMIN, "interactions", channel_id="ch_jd"), "channel_id"),
        (lambda: anomalies.anomalies(demo_ctx, ADMIN, cfg=BandConfig(weeks=1)), "weeks"),
    ]
    for call, field in cases:
        with pytest.raises(SiyuError) as err:
            call()
        assert err.value.field == field, err.value.message


@pytest.fixture(scope="module")
def api(demo_ctx: Context) -> Iterator[str]:
    ensure_logins(demo_ctx, BRAND)
    with live_server(create_app(demo_ctx, with_console=False)) as base:
        yield base


def _h(base: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_api_scope_of_a_guide(api: str, demo_ctx: Context, R: Raw) -> None:
    admin, guide = _h(api, "admin", "siyu-admin"), _h(api, "guide1", "siyu-guide")
    q = {"start": "2026-10-01", "end": "2026-10-31"}
    board = httpx.get(f"{api}/api/metrics/guides", params=q, headers=guide, timeout=60)
    assert board.status_code == 200 and len(board.json()["rows"]) == 12
    own = httpx.get(f"{api}/api/metrics/guides/g01/customers", params=q, headers=guide, timeout=60)
    assert own.status_code == 200, own.text
    other = httpx.get(f"{api}/api/metrics/guides/g02/customers", params=q, headers=guide, timeout=60)
    assert other.status_code == 404 and other.json()["field"] == "guide_id"
    # a guide's drill-down never goes beyond their own customers (reachable today: relations and owned groups)
    allowed = reachable_ids(demo_ctx, "demo", "g01")
    ids = {r["customer_id"] for r in own.json()["rows"]}
    assert ids and ids <= allowed
    assert all("****" in (r["phone"] or "****") for r in own.json()["rows"])
    full = httpx.get(f"{api}/api/metrics/guides/g01/customers", params=q, headers=admin, timeout=60).json()
    assert ids <= {r["customer_id"] for r in full["rows"]}
    cac = httpx.get(f"{api}/api/metrics/cac", params={"by": "guide"}, headers=guide, timeout=60)
    assert cac.status_code == 200 and [r["guide_id"] for r in cac.json()["rows"]] == ["g01"]
    assert cac.json()["total"] is None
    assert httpx.get(f"{api}/api/metrics/cac", headers=guide, timeout=60).status_code == 403
    assert httpx.get(f"{api}/api/metrics/anomalies", headers=guide, timeout=60).status_code == 403
    bad = httpx.get(f"{api}/api/metrics/roi", params={"by": "x"}, headers=admin, timeout=60)
    assert bad.status_code == 400 and bad.json()["field"] == "by"
    an = httpx.get(f"{api}/api/metrics/anomalies", params={"day": "2026-10-31"}, headers=admin, timeout=60)
    assert an.status_code == 200 and an.json()["day"] == "2026-10-31"
    band = httpx.get(f"{api}/api/metrics/anomalies/band", params={"step": "orders"}, headers=admin, timeout=60)
    assert band.status_code == 200 and len(band.json()["rows"]) == 28


def _run(args: list[str], data_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SIYU_DATA_DIR", str(data_dir))
    return CliRunner().invoke(cli_app, args)


def test_cli_cac_guides_anomalies(demo_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    d = demo_ctx.settings.data_dir
    r = _run(
        ["metrics", "cac", "--brand", BRAND, "--start", "2026-08-01", "--end", "2026-10-31", "--json"], d, monkeypatch
    )
    assert r.exit_code == 0, r.output
    api_like = acquisition.cac_report(demo_ctx, ADMIN, "channel", START, END, AS_OF)
    assert json.loads(r.output)["total"]["cac"] == pytest.approx(api_like["total"]["cac"])
    r = _run(["metrics", "guides", "--brand", BRAND, "--store", "st_sh"], d, monkeypatch)
    assert r.exit_code == 0 and "g01" in r.output and "g05" not in r.output
    r = _run(["metrics", "guides", "--brand", BRAND, "--guide", "g03", "--json"], d, monkeypatch)
    assert r.exit_code == 0 and json.loads(r.output)["guide_id"] == "g03"
    r = _run(["metrics", "anomalies", "--brand", BRAND, "--day", "2026-10-31", "--json"], d, monkeypatch)
    assert r.exit_code == 0, r.output
    expected = anomalies.detect(demo_ctx, BRAND, date(2026, 10, 31))
    assert [(a["step"], a["channel_id"]) for a in json.loads(r.output)["anomalies"]] == [
        (a["step"], a["channel_id"]) for a in expected
    ]
    r = _run(["metrics", "cac", "--brand", BRAND, "--by", "region"], d, monkeypatch)
    assert r.exit_code == 2 and "by" in r.output


def test_online_retail_daily_orders_and_gmv(retail_ctx: Context) -> None:
    """Where it applies on Online Retail (no WeCom, no spend): the order and GMV series, and empty CAC reports."""
    o = retail_ctx.warehouse.ibis.table("orders").execute()
    o = o[(o.brand_id == "retail") & ~o.status.isin(EXCLUDED)].copy()
    o["day"] = local(o.ordered_at).dt.normalize()
    s, e = date(2011, 9, 1), date(2011, 12, 9)
    idx = pd.date_range(s, e)
    exp_n = o.groupby("day").size().reindex(idx, fill_value=0).astype(float)
    exp_g = o.assign(a=o.amount.astype(float)).groupby("day")["a"].sum().reindex(idx, fill_value=0.0)
    assert anomalies.daily_values(retail_ctx, "retail", "orders", s, e).tolist() == exp_n.tolist()
    got_g = anomalies.daily_values(retail_ctx, "retail", "gmv", s, e)
    assert np.allclose(got_g.to_numpy(), exp_g.to_numpy())
    user = User(0, "retail", "t", "t", Role.ADMIN, None, "zh")
    r = acquisition.cac_report(retail_ctx, user, "channel", s, e)
    assert r["rows"] == [] and r["total"]["customers"] == 0 and r["total"]["cac"] is None
    assert guides.leaderboard(retail_ctx, user, s, e)["rows"] == []


def test_attribution_on_a_constructed_brand(ctx: Context) -> None:
    """Origin vs lead-in channel, campaign from the lead-in touch, allocation to guides and campaigns, a
    group-only customer, a refunded order and spend outside the period — with the answer worked out by hand."""
    from datetime import datetime

    from siyu.services import brands

    brands.create_brand(ctx, "acq", "Acq")
    ts = datetime.fromisoformat
    with ctx.warehouse.transaction() as cur:
        cur.executemany(
            "INSERT INTO channels VALUES ('acq', ?, ?, ?)",
            [("ch_m", "Mall", "marketplace"), ("ch_p", "Parcel", "parcel_card"), ("ch_ad", "Ads", "ad_platform")],
        )
        cur.executemany(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES ('acq', ?, ?, ?)",
            [("external_userid", "wm1", "c1"), ("phone", "p1", "c1"), ("external_userid", "wm2", "c2"),
             ("phone", "p2", "c2"), ("external_userid", "wm3", "c3"), ("unionid", "u4", "c4")],
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state, channel_id, source_ref)"
            " VALUES ('acq', ?, ?, ?, 'active', ?, ?)",
            [("wm1", "g1", ts("2026-10-05 10:00"), "ch_p", "msg1"), ("wm2", "g2", ts("2026-10-06 10:00"), "ch_ad",
              "msg2"), ("wm3", "g1", ts("2026-09-01 10:00"), "ch_ad", None)],
        )  # fmt: skip
        cur.execute(
            "INSERT INTO group_members VALUES ('acq', 'tp_g', 'unionid', 'u4', ?, NULL)", [ts("2026-10-07 09:00")]
        )
        cur.executemany(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount, status,"
            " channel_id) VALUES ('acq', ?, 'phone', ?, ?, ?, ?, ?)",
            [("o1", "p1", ts("2026-10-03 12:00"), 100, "paid", "ch_m"), ("o2", "p1", ts("2026-10-20 12:00"), 50,
              "paid", None), ("o3", "p2", ts("2026-10-10 12:00"), 100, "paid", "ch_m"),
             ("o4", "p2", ts("2026-10-11 12:00"), 999, "refunded", "ch_m")],
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO events (brand_id, message_id, type, event, properties, timestamp, received_at)"
            " VALUES ('acq', ?, 'track', 'Touch Delivered', ?, ?, ?)",
            [("msg1", '{"purpose":"lead_in","campaign_id":"cmp_a"}', ts("2026-10-04 10:00"), ts("2026-10-04 10:00")),
             ("msg2", '{"purpose":"lead_in"}', ts("2026-10-05 10:00"), ts("2026-10-05 10:00"))],
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO channel_spend (brand_id, channel_id, day, spend, exposures) VALUES ('acq', ?, ?, ?, 0)",
            [("ch_m", date(2026, 10, 1), 300), ("ch_p", date(2026, 10, 5), 20), ("ch_ad", date(2026, 10, 6), 50),
             ("ch_ad", date(2026, 9, 1), 1000)],
        )  # fmt: skip
    user = User(0, "acq", "t", "t", Role.ADMIN, None, "zh")
    s, e = date(2026, 10, 1), date(2026, 10, 31)

    def report(by: str) -> dict[Any, tuple[float, int, float]]:
        r = acquisition.cac_report(ctx, user, by, s, e, e)
        return {row[r["key"]]: (row["spend"], row["customers"], row["revenue"]) for row in r["rows"]}

    # c1: bought on the mall before joining through a parcel card → credited to ch_m and ch_p
    # c2: joined through ads, bought later on the mall → ch_ad only; c3 joined before the period; c4 group only
    assert report("channel") == {"ch_m": (300, 1, 150), "ch_p": (20, 1, 150), "ch_ad": (50, 1, 100)}
    assert report("platform") == {
        "marketplace": (300, 1, 150),
        "parcel_card": (20, 1, 150),
        "ad_platform": (50, 1, 100),
    }
    assert report("guide") == {"g1": (320, 1, 150), "g2": (50, 1, 100), None: (0, 1, 0)}
    assert report("campaign") == {"cmp_a": (320, 1, 150), None: (50, 2, 100)}
    total = acquisition.cac_report(ctx, user, "channel", s, e, e)["total"]
    assert (total["spend"], total["customers"], total["revenue"]) == (370, 3, 250)
    assert total["cac"] == pytest.approx(370 / 3) and total["roi"] == pytest.approx((250 - 370) / 370)
    ch_m = next(r for r in acquisition.cac_report(ctx, user, "channel", s, e, e)["rows"] if r["channel_id"] == "ch_m")
    assert ch_m["roi"] == pytest.approx(-0.5) and ch_m["ltv_cac"] == pytest.approx(0.5)
    # revenue is counted up to as_of: on 2026-10-10 c1's second order (10-20) is not realised yet
    early = acquisition.cac_report(ctx, user, "channel", s, date(2026, 10, 10), date(2026, 10, 10))
    assert next(r for r in early["rows"] if r["channel_id"] == "ch_p")["revenue"] == 100
