"""Segment conditions compiled to Ibis, each checked against an independent pandas computation over the raw demo
tables (demo_ctx, read-only); nesting logic; definition errors naming the JSON path.

Stored times are naive UTC; dates are the brand's local (Beijing, UTC+8) days: "as of d" is Beijing midnight opening
d, a window of w days starts at Beijing midnight opening d − w, and "days ago" counts from the local day of a record
(``tests.support.brand_days``)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from siyu.analytics.segments import segment_customers
from siyu.domain.segment_def import DefinitionError, dump_definition, parse_definition
from siyu.services.context import Context
from siyu.services.metrics import tables
from tests.support.brand_days import day_start, local_dates
from tests.test_metrics_value import Ref, raw, ref_aipl, ref_lifecycle, ref_rfm

AS_OF = date(2026, 10, 1)  # inside the demo window: later records must not count
BRAND = "demo"


class Data(Ref):
    """The metrics reference plus the raw columns segments need (event properties, customers, guides)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, BRAND)
        self.customers = raw(ctx, "customers", BRAND)
        self.all = set(self.customers["customer_id"])
        self.identities = raw(ctx, "identities", BRAND)
        ev = raw(ctx, "events", BRAND)
        by_user = [self.cust.get(("user_id", v)) for v in ev["user_id"]]
        by_anon = [self.cust.get(("anonymous_id", v)) for v in ev["anonymous_id"]]
        ev["customer_id"] = [u if u is not None else a for u, a in zip(by_user, by_anon, strict=True)]
        ev = ev[ev["customer_id"].notna()].copy()
        ev["props"] = [json.loads(p) if isinstance(p, str) else (p or {}) for p in ev["properties"]]
        self.ev = ev
        guides = raw(ctx, "guides", BRAND).set_index("guide_id")["store_id"]
        self.relations = self.relations.assign(store_id=self.relations["guide_id"].map(guides))


@pytest.fixture(scope="module")
def data(demo_ctx: Context) -> Data:
    return Data(demo_ctx)


def got(ctx: Context, definition: dict[str, Any], as_of: date = AS_OF) -> set[str]:
    expr = segment_customers(tables(ctx, BRAND), parse_definition(definition), as_of)
    ids = expr.to_pyarrow().column("customer_id").to_pylist()
    assert len(ids) == len(set(ids)), "one row per customer"
    return set(ids)


def ts(d: date) -> pd.Timestamp:
    """The instant "as of" day ``d`` means: Beijing midnight opening it, in stored (naive UTC) time."""
    return day_start(d)


def since(days: int, as_of: date = AS_OF) -> pd.Timestamp:
    return day_start(as_of - timedelta(days=days))


def days_ago(times: pd.Series, as_of: date = AS_OF) -> pd.Series:
    """Calendar days from the local (Beijing) day of each stored time to ``as_of``."""
    return pd.Series([(as_of - d).days for d in local_dates(times)], index=times.index)


def check(ctx: Context, definition: dict[str, Any], expected: set[str], as_of: date = AS_OF) -> set[str]:
    result = got(ctx, definition, as_of)
    assert result == expected, (definition, len(result), len(expected))
    return result


# --- traits ------------------------------------------------------------------------------------------------------


def test_traits_columns_and_json(demo_ctx: Context, data: Data) -> None:
    c = data.customers
    both = set(c[c["city"].isin(["上海", "杭州"])]["customer_id"])
    assert 0 < len(both) < len(c)
    check(demo_ctx, {"kind": "trait", "field": "city", "op": "in", "value": ["上海", "杭州"]}, both)
    not_sh = set(c[c["city"].isna() | (c["city"] != "上海")]["customer_id"])
    check(demo_ctx, {"kind": "trait", "field": "city", "op": "ne", "value": "上海"}, not_sh)
    traits = [json.loads(t) if isinstance(t, str) else {} for t in c["traits"]]
    female = {cid for cid, t in zip(c["customer_id"], traits, strict=True) if t.get("gender") == "female"}
    assert female
    check(demo_ctx, {"kind": "trait", "field": "traits.gender", "value": "female"}, female)
    older = set(c[pd.to_datetime(c["birthday"]) < pd.Timestamp("1990-01-01")]["customer_id"])
    check(demo_ctx, {"kind": "trait", "field": "birthday", "op": "lt", "value": "1990-01-01"}, older)
    # a timestamp given as a wall clock is Beijing time; with an offset it is that instant
    created = pd.to_datetime(c["created_at"])
    lo, hi = day_start(date(2026, 1, 1)), day_start(date(2026, 3, 1))
    mid = set(c[(created >= lo) & (created <= hi)]["customer_id"])
    spec = {"kind": "trait", "field": "created_at", "op": "between", "value": ["2026-01-01", "2026-03-01"]}
    check(demo_ctx, spec, mid)
    noon = pd.Timestamp("2026-01-01 12:00")
    local_noon = set(c[created >= noon - pd.Timedelta(hours=8)]["customer_id"])
    utc_noon = set(c[created >= noon]["customer_id"])
    assert local_noon != utc_noon  # customers created in between tell the two readings apart
    check(demo_ctx, {"kind": "trait", "field": "created_at", "op": "gte", "value": "2026-01-01 12:00"}, local_noon)
    check(demo_ctx, {"kind": "trait", "field": "created_at", "op": "gte", "value": "2026-01-01T12:00:00Z"}, utc_noon)
    at_8 = {"kind": "trait", "field": "created_at", "op": "gte", "value": "2026-01-01T20:00:00+08:00"}
    check(demo_ctx, at_8, utc_noon)
    prefix = set(c[c["phone"].fillna("").str.startswith("+86138")]["customer_id"])
    check(demo_ctx, {"kind": "trait", "field": "phone", "op": "starts_with", "value": "+86138"}, prefix)
    no_email = set(c[c["email"].isna()]["customer_id"])
    check(demo_ctx, {"kind": "trait", "field": "email", "op": "not_exists"}, no_email)


# --- events ------------------------------------------------------------------------------------------------------


def _events(data: Data, name: str, days: int | None, kind: str = "track") -> pd.DataFrame:
    e = data.ev[(data.ev["type"] == kind) & (data.ev["timestamp"] < ts(AS_OF))]
    e = e[e["event"] == name] if kind == "track" else e[e["name"] == name]
    if days is not None:
        e = e[e["timestamp"] >= since(days)]
    return e


def test_event_counts_and_sums_in_windows(demo_ctx: Context, data: Data) -> None:
    clicks = _events(data, "Message Clicked", 30).groupby("customer_id").size()
    exp = set(clicks[clicks >= 2].index)
    assert exp
    check(demo_ctx, {"kind": "event", "event": "Message Clicked", "window_days": 30, "op": "gte", "value": 2}, exp)

    # a zero satisfies "< 1": customers without any click match too
    all_time = _events(data, "Message Clicked", None).groupby("customer_id").size()
    check(
        demo_ctx, {"kind": "event", "event": "Message Clicked", "op": "lt", "value": 1}, data.all - set(all_time.index)
    )

    e = _events(data, "Touch Delivered", 60)
    e = e[[p.get("purpose") == "broadcast" for p in e["props"]]]
    n = e.groupby("customer_id").size()
    spec = {
        "kind": "event",
        "event": "Touch Delivered",
        "window_days": 60,
        "where": [{"property": "purpose", "value": "broadcast"}],
        "op": "between",
        "value": [2, 3],
    }
    check(demo_ctx, spec, set(n[(n >= 2) & (n <= 3)].index))

    v = _events(data, "Product Viewed", 90)
    v = v.assign(price=[float(p.get("price") or 0) for p in v["props"]])
    s = v.groupby("customer_id")["price"].sum()
    spec = {"kind": "event", "event": "Product Viewed", "window_days": 90, "measure": "sum", "property": "price"}
    check(demo_ctx, {**spec, "op": "gte", "value": 500}, set(s[s >= 500].index))

    pages = _events(data, "首页", 180, kind="page").groupby("customer_id").size()
    check(demo_ctx, {"kind": "event", "type": "page", "event": "首页", "window_days": 180}, set(pages.index))


# --- orders ------------------------------------------------------------------------------------------------------


def test_order_stats(demo_ctx: Context, data: Data) -> None:
    o = data.orders_before(AS_OF)
    g = o.groupby("customer_id")
    n = g["order_id"].nunique()
    check(demo_ctx, {"kind": "orders", "op": "gte", "value": 3}, set(n[n >= 3].index))
    check(demo_ctx, {"kind": "orders", "op": "eq", "value": 0}, data.all - set(n.index))
    w = data.orders_before(AS_OF, 180).groupby("customer_id")["amount"].sum()
    spec = {"kind": "orders", "measure": "sum", "window_days": 180, "op": "between", "value": [300, 1500]}
    check(demo_ctx, spec, set(w[(w >= 300) & (w <= 1500)].index))
    avg = g["amount"].mean()
    check(demo_ctx, {"kind": "orders", "measure": "avg", "op": "gt", "value": 400}, set(avg[avg > 400].index))
    mx = g["amount"].max()
    check(demo_ctx, {"kind": "orders", "measure": "max", "op": "gte", "value": 899}, set(mx[mx >= 899].index))

    last_days = days_ago(g["ordered_at"].max())
    first_days = days_ago(g["ordered_at"].min())
    for op, value, fn in (
        ("lte", 30, lambda d: d <= 30),
        ("gte", 90, lambda d: d >= 90),
        ("gt", 90, lambda d: d > 90),
        ("lt", 7, lambda d: d < 7),
        ("eq", 1, lambda d: d == 1),
    ):
        exp = set(last_days[fn(last_days)].index)
        assert exp, op
        check(demo_ctx, {"kind": "orders", "measure": "last_days_ago", "op": op, "value": value}, exp)
    spec = {"kind": "orders", "measure": "first_days_ago", "op": "between", "value": [100, 200]}
    check(demo_ctx, spec, set(first_days[(first_days >= 100) & (first_days <= 200)].index))

    store = o[o["channel_id"] == "ch_store"].groupby("customer_id")["order_id"].nunique()
    check(demo_ctx, {"kind": "orders", "channels": ["ch_store"], "op": "gte", "value": 2}, set(store[store >= 2].index))
    g01 = o[o["guide_id"] == "g01"]
    check(demo_ctx, {"kind": "orders", "guides": ["g01"]}, set(g01["customer_id"]))


# --- identities, relations, channel, groups -------------------------------------------------------------------


def test_identity_guide_store_channel_group(demo_ctx: Context, data: Data) -> None:
    i = data.identities
    check(demo_ctx, {"kind": "identity", "id_type": "member_id"}, set(i[i["id_type"] == "member_id"]["customer_id"]))

    r = data.relations
    at = ts(AS_OF)
    active = r[(r["added_at"] <= at) & (r["lost_at"].isna() | (r["lost_at"] > at))]
    check(
        demo_ctx,
        {"kind": "guide", "guides": ["g01", "g05"]},
        set(active[active["guide_id"].isin(["g01", "g05"])].customer_id),
    )
    lost = r[r["lost_at"].notna() & (r["lost_at"] < at) & (r["guide_id"] == "g02")]
    assert len(lost)
    check(demo_ctx, {"kind": "guide", "guides": ["g02"], "status": "lost"}, set(lost["customer_id"]))
    ever = r[(r["added_at"] < at) & (r["store_id"] == "st_hz")]
    check(demo_ctx, {"kind": "store", "stores": ["st_hz"], "status": "ever"}, set(ever["customer_id"]))
    check(demo_ctx, {"kind": "store", "stores": ["st_sh"]}, set(active[active["store_id"] == "st_sh"].customer_id))

    # acquisition channel = channel of the customer's first relation (joined before as_of)
    first = r.sort_values("added_at").groupby("customer_id").first()
    joined_at = data.joined()
    chan = first[first["channel_id"].isin(["ch_parcel", "ch_douyin"])]
    exp = {c for c in chan.index if joined_at[c] < at}
    assert exp
    check(demo_ctx, {"kind": "channel", "channels": ["ch_parcel", "ch_douyin"]}, exp)

    gm = data.groups
    now_in = gm[(gm["joined_at"] <= at) & (gm["left_at"].isna() | (gm["left_at"] > at))]
    check(demo_ctx, {"kind": "group"}, set(now_in["customer_id"]))
    one = sorted(set(gm["touchpoint_id"]))[0]
    ever_in = gm[(gm["joined_at"] < at) & (gm["touchpoint_id"] == one)]
    check(demo_ctx, {"kind": "group", "groups": [one], "status": "ever"}, set(ever_in["customer_id"]))


# --- RFM, AIPL, lifecycle (the references are the metrics tests' pandas versions) -----------------------------


def test_rfm_aipl_lifecycle(demo_ctx: Context, data: Data) -> None:
    rfm = ref_rfm(data, AS_OF)
    classes = ["important_value", "general_win_back"]
    check(demo_ctx, {"kind": "rfm", "classes": classes}, set(rfm[rfm["cls"].isin(classes)].index))
    w = ref_rfm(data, AS_OF, 180)
    spec = {"kind": "rfm", "window_days": 180, "r_scores": [5], "m_scores": [4, 5]}
    check(demo_ctx, spec, set(w[(w["rs"] == 5) & w["ms"].isin([4, 5])].index))
    stages = ref_aipl(data, AS_OF)
    check(demo_ctx, {"kind": "aipl", "stages": ["I", "L"]}, set(stages[stages.isin(["I", "L"])].index))
    life = ref_lifecycle(data, AS_OF, 60)
    keep = ["new_purchased", "old_repurchased"]
    check(demo_ctx, {"kind": "lifecycle", "stages": keep, "new_days": 60}, set(life[life.isin(keep)].index))


# --- nesting --------------------------------------------------------------------------------------------------


def test_and_or_not_nesting(demo_ctx: Context, data: Data) -> None:
    a = {"kind": "trait", "field": "city", "value": "上海"}
    b = {"kind": "orders", "op": "gte", "value": 3}
    c = {"kind": "event", "event": "Message Clicked", "window_days": 90}
    sa, sb, sc = got(demo_ctx, a), got(demo_ctx, b), got(demo_ctx, c)
    assert sa and sb and sc
    check(demo_ctx, {"kind": "and", "conditions": [a, b]}, sa & sb)
    check(demo_ctx, {"kind": "or", "conditions": [a, b, c]}, sa | sb | sc)
    check(demo_ctx, {"kind": "not", "condition": a}, data.all - sa)
    check(demo_ctx, {"kind": "and", "conditions": [b, {"kind": "not", "condition": a}]}, sb - sa)
    check(demo_ctx, {"kind": "and", "conditions": [{"kind": "not", "condition": a}]}, data.all - sa)
    nested = {
        "kind": "or",
        "conditions": [
            {"kind": "and", "conditions": [a, {"kind": "not", "condition": c}]},
            {"kind": "not", "condition": {"kind": "or", "conditions": [b, c]}},
        ],
    }
    check(demo_ctx, nested, (sa - sc) | (data.all - (sb | sc)))


def test_as_of_excludes_later_records(demo_ctx: Context, data: Data) -> None:
    later = date(2026, 10, 31)
    spec = {"kind": "orders", "window_days": 10}
    o = data.orders_before(later, 10)
    assert check(demo_ctx, spec, set(o["customer_id"]), as_of=later) != got(demo_ctx, spec)


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "path", "words"),
    [
        ({"kind": "and", "conditions": [{"kind": "evnt"}]}, "definition.conditions[0].kind", "must be one of"),
        (
            {
                "kind": "or",
                "conditions": [{"kind": "tag", "tags": ["vip"]}, {"kind": "event", "event": "x", "window_days": 0}],
            },
            "definition.conditions[1].window_days",
            "greater than or equal to 1",
        ),
        (
            {"kind": "not", "condition": {"kind": "trait", "field": "citi", "value": "x"}},
            "definition.condition.field",
            "traits.<key>",
        ),
        ({"kind": "event", "event": "Product Viewed", "measure": "sum"}, "definition.property", "numeric property"),
        ({"kind": "orders", "op": "between", "value": 3}, "definition.value", "[low, high]"),
        ({"kind": "rfm", "classes": ["important"]}, "definition.classes[0]", "important_value"),
        ({"kind": "and", "conditions": []}, "definition.conditions", "at least one"),
        ({"kind": "guide", "guides": ["g01"], "colour": "red"}, "definition.colour", "remove it"),
        ({"kind": "and"}, "definition.conditions", "add 'conditions'"),
        ({"kind": "trait", "field": "birthday", "op": "gt", "value": "yesterday"}, "definition.value", "YYYY-MM-DD"),
        ({"kind": "event", "type": "track"}, "definition.event", "event name"),
        ([1, 2], "definition", "JSON object"),
    ],
)
def test_errors_name_the_path_and_the_fix(definition: Any, path: str, words: str) -> None:
    with pytest.raises(DefinitionError) as exc:
        parse_definition(definition)
    assert exc.value.field == path, exc.value.errors
    assert words in exc.value.errors[0]["message"], exc.value.errors
    assert path in exc.value.message


def test_dump_round_trips() -> None:
    spec = {
        "kind": "and",
        "conditions": [
            {"kind": "event", "event": "Message Clicked", "window_days": 7, "op": "gte", "value": 2},
            {"kind": "not", "condition": {"kind": "channel", "channels": ["ch_tmall"]}},
        ],
    }
    cond = parse_definition(spec)
    assert parse_definition(dump_definition(cond)) == cond
    assert dump_definition(cond)["conditions"][1]["condition"]["kind"] == "channel"


def test_live_count_with_cached_stage_leaves_matches(demo_ctx: Context) -> None:
    from siyu.domain.models import Role
    from siyu.services import segments as svc
    from siyu.services.brands import User

    user = User(0, BRAND, "t", "t", Role.ADMIN, None, "zh")
    rfm = {"kind": "rfm", "classes": ["important_value"]}
    for value in (1, 2, 1):  # the second and third previews reuse the cached RFM leaf
        spec = {"kind": "or", "conditions": [rfm, {"kind": "orders", "op": "gte", "value": value}]}
        got_ids = got(demo_ctx, spec)
        live = svc.preview(demo_ctx, user, spec, as_of=AS_OF.isoformat(), sample=5)
        assert live["count"] == len(got_ids) and {s["customer_id"] for s in live["sample"]} <= got_ids
    not_rfm = {"kind": "and", "conditions": [{"kind": "not", "condition": rfm}]}
    assert svc.preview(demo_ctx, user, not_rfm, as_of=AS_OF.isoformat())["count"] == len(got(demo_ctx, not_rfm))


def test_order_and_rfm_conditions_on_online_retail(retail_ctx: Context) -> None:
    ref = Ref(retail_ctx, "retail")
    as_of = date(2011, 12, 10)
    t = tables(retail_ctx, "retail")

    def ids(definition: dict[str, Any]) -> set[str]:
        expr = segment_customers(t, parse_definition(definition), as_of)
        return set(expr.to_pyarrow().column("customer_id").to_pylist())

    o = ref.orders_before(as_of, 90)
    n = o.groupby("customer_id")["order_id"].nunique()
    assert ids({"kind": "orders", "window_days": 90, "op": "gte", "value": 5}) == set(n[n >= 5].index)
    spent = ref.orders_before(as_of).groupby("customer_id")["amount"].sum()
    spec = {"kind": "orders", "measure": "sum", "op": "between", "value": [1000, 5000]}
    assert ids(spec) == set(spent[(spent >= 1000) & (spent <= 5000)].index)
    rfm = ref_rfm(ref, as_of)
    assert len(rfm) == 4338  # the reference cleaning's customers
    lost = {"kind": "rfm", "classes": ["important_win_back", "general_win_back"]}
    assert ids(lost) == set(rfm[rfm["cls"].isin(lost["classes"])].index)
