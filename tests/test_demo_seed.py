"""The demo brand generator: determinism, volumes, rates, referential sanity, idempotency."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import ibis
import pytest

from siyu.config import Settings
from siyu.domain.identity import normalize
from siyu.services.brands import authenticate
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, seed_demo, seeded_info
from siyu.services.demo.check import demo_rates
from siyu.services.demo.config import CHANNELS
from siyu.services.errors import Conflict, SiyuError

SMALL = 2_000
HAS_ONEID = importlib.util.find_spec("siyu.services.oneid") is not None
DATA_TABLES = (
    "stores",
    "guides",
    "channels",
    "channel_spend",
    "touchpoints",
    "relations",
    "group_members",
    "orders",
    "order_lines",
    "events",
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """One small demo brand (2,000 customers) shared by the read-only tests of this module."""
    ctx = Context.open(Settings(data_dir=tmp_path_factory.mktemp("demo")))
    result = seed_demo(ctx, DemoConfig(customers=SMALL))
    assert result.seeded
    yield ctx
    ctx.close()


def table_digest(ctx: Context, brand_id: str) -> dict[str, str]:
    """sha256 of each table's rows of a brand (sorted, all columns except the obs_id sequence)."""
    out = {}
    for name in (*DATA_TABLES, "identity_observations"):
        t = ctx.warehouse.table(name)
        t = t.filter(t.brand_id == brand_id)
        if "obs_id" in t.columns:
            t = t.drop("obs_id")
        df = t.execute()
        df = df.astype(str).sort_values(list(df.columns)).reset_index(drop=True)
        out[name] = hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()
    return out


def distinct(column: ibis.Value) -> list[object]:
    """Distinct values of a column expression."""
    return list(column.name("v").as_table().distinct().execute()["v"])


def count(ctx: Context, name: str, brand_id: str = "demo") -> int:
    t = ctx.warehouse.table(name)
    return int(t.filter(t.brand_id == brand_id).count().execute())


def test_same_seed_gives_identical_tables_and_other_seed_differs(tmp_path: Path) -> None:
    digests = []
    for run, seed in enumerate((7, 7, 8)):
        ctx = Context.open(Settings(data_dir=tmp_path / f"run{run}"))
        try:
            seed_demo(ctx, DemoConfig(customers=300, seed=seed), resolve=False)
            digests.append(table_digest(ctx, "demo"))
        finally:
            ctx.close()
    assert digests[0] == digests[1]
    assert all(digests[0][t] != digests[2][t] for t in ("orders", "relations", "events", "identity_observations"))


def test_volumes_of_a_small_brand(seeded: Context) -> None:
    cfg = DemoConfig(customers=SMALL)
    assert count(seeded, "stores") == 3
    assert count(seeded, "guides") == 12
    assert count(seeded, "channels") == 8
    assert count(seeded, "channel_spend") == 8 * cfg.days
    n_orders = count(seeded, "orders")
    assert 3.5 * SMALL <= n_orders <= 4.5 * SMALL  # ≈ 4 orders per customer
    assert 1.3 * n_orders <= count(seeded, "order_lines") <= 2.0 * n_orders
    assert 0.55 * SMALL <= count(seeded, "relations") <= 0.72 * SMALL  # 90% invited × 70% added
    assert 0.25 * count(seeded, "relations") <= count(seeded, "group_members") <= 0.45 * count(seeded, "relations")
    assert count(seeded, "events") >= 5 * SMALL
    assert count(seeded, "identity_observations") >= 2 * SMALL
    ev = seeded.warehouse.table("events")
    names = {x for x in distinct(ev.event) if isinstance(x, str)}
    assert {"Touch Delivered", "Message Clicked", "Message Replied", "Coupon Claimed", "Product Viewed"} <= names
    assert set(distinct(ev.type)) == {"track", "page"}
    tp = seeded.warehouse.table("touchpoints")
    kinds = tp.group_by("kind").agg(n=tp.count()).execute().set_index("kind")["n"].to_dict()
    assert kinds["wecom_contact"] == 12 and kinds["customer_group"] >= 3
    assert {"official_account", "mini_program", "sms"} <= set(kinds)


def test_rates_land_in_the_seed_ranges(seeded: Context) -> None:
    rates = demo_rates(seeded, "demo")
    assert 0.24 <= rates["add_rate.ch_parcel"] <= 0.34  # type: ignore[operator]
    assert 0.22 <= rates["add_rate.ch_aicall"] <= 0.28  # type: ignore[operator]
    assert 0.65 <= rates["lead_in_success"] <= 0.75  # type: ignore[operator]
    assert 0.40 <= rates["service_success"] <= 0.50  # type: ignore[operator]
    assert 0.01 <= rates["monthly_loss"] <= 0.06  # type: ignore[operator]
    if HAS_ONEID:
        assert 0.10 <= rates["monetization"] <= 0.40  # type: ignore[operator]


def test_cost_per_add_of_cheap_channels(seeded: Context) -> None:
    r, s = seeded.warehouse.table("relations"), seeded.warehouse.table("channel_spend")
    adds = r.group_by("channel_id").agg(adds=r.count())
    spend = s.group_by("channel_id").agg(spend=s.spend.sum())
    cpa = adds.join(spend, "channel_id").mutate(cpa=lambda t: t.spend / t.adds).execute()
    per = dict(zip(cpa.channel_id, cpa.cpa.astype(float), strict=True))
    assert per["ch_parcel"] < 3.0  # parcel cards: < ¥3 per contact
    assert per["ch_aicall"] < 2.0  # AI call + SMS: < ¥2 per contact


def test_referential_sanity(seeded: Context) -> None:
    wh, cfg = seeded.warehouse, DemoConfig(customers=SMALL)
    rel, guides = wh.table("relations"), wh.table("guides")
    assert int(rel.anti_join(guides, ["brand_id", "guide_id"]).count().execute()) == 0
    gm, tps = wh.table("group_members"), wh.table("touchpoints")
    assert int(gm.anti_join(tps, ["brand_id", "touchpoint_id"]).count().execute()) == 0
    orders, lines, stores = wh.table("orders"), wh.table("order_lines"), wh.table("stores")
    assert (
        int(orders.filter(orders.store_id.notnull()).anti_join(stores, ["brand_id", "store_id"]).count().execute()) == 0
    )
    assert int(lines.anti_join(orders, ["brand_id", "order_id"]).count().execute()) == 0
    totals = lines.group_by(["brand_id", "order_id"]).agg(total=lines.amount.sum())
    mismatched = orders.join(totals, ["brand_id", "order_id"]).filter(lambda t: t.amount != t.total)
    assert int(mismatched.count().execute()) == 0
    # Every record lies inside the window; spend covers every day of it for every channel.
    start, end = cfg.start_at, cfg.end_at
    span = orders.aggregate(lo=orders.ordered_at.min(), hi=orders.ordered_at.max()).execute().iloc[0]
    assert span.lo >= start and span.hi < end
    s = wh.table("channel_spend")
    cover = s.group_by("channel_id").agg(days=s.day.nunique(), lo=s.day.min(), hi=s.day.max()).execute()
    assert set(cover.channel_id) == {c.channel_id for c in CHANNELS}
    assert (cover.days == cfg.days).all()
    assert {pd_date(x) for x in cover.lo} == {cfg.start} and {pd_date(x) for x in cover.hi} == {date(2026, 10, 31)}
    # Relations: lost ones have a time and a side; every relation follows a lead-in invitation.
    lost = rel.filter(rel.state == "lost")
    assert int(lost.filter(lost.lost_at.isnull() | lost.lost_by.isnull()).count().execute()) == 0
    assert int(lost.filter(lost.lost_at <= lost.added_at).count().execute()) == 0
    ev = wh.table("events")
    assert int(rel.anti_join(ev, rel.source_ref == ev.message_id).count().execute()) == 0
    # Orders refer to people by phone (valid +86 mobiles) or member id.
    refs = orders.group_by("customer_ref_type").agg(n=orders.count()).execute()
    assert set(refs.customer_ref_type) == {"phone", "member_id"}
    phones = distinct(orders.filter(orders.customer_ref_type == "phone").customer_ref)
    for phone in list(phones)[:300]:
        assert normalize("phone", phone).value == phone and phone.startswith("+861")


def pd_date(value: object) -> date:
    return value.date() if hasattr(value, "date") else value  # type: ignore[return-value]


def test_observations_carry_every_identifier_of_a_record(seeded: Context) -> None:
    obs = seeded.warehouse.table("identity_observations")
    assert set(distinct(obs.source_kind)) == {"demo"}
    flat = obs.select(obs.source_ref, ident=obs.identifiers.unnest())
    types = set(distinct(flat.ident["type"]))
    assert {"phone", "unionid", "external_userid", "member_id", "openid", "anonymous_id", "user_id"} <= types
    # Each order's customer_ref and each relation's external_userid was observed.
    orders, rel = seeded.warehouse.table("orders"), seeded.warehouse.table("relations")
    seen = flat.select(id_type=flat.ident["type"], id_value=flat.ident["value"]).distinct()
    missing = orders.anti_join(
        seen, (orders.customer_ref_type == seen.id_type) & (orders.customer_ref == seen.id_value)
    )
    assert int(missing.count().execute()) == 0
    seen_euid = seen.filter(seen.id_type == "external_userid")
    assert int(rel.anti_join(seen_euid, rel.external_userid == seen_euid.id_value).count().execute()) == 0
    # Deliberate duplicates: a phone seen alone on an order, later together with a unionid.
    alone = obs.filter(obs.source_ref.startswith("orders#") & (obs.identifiers.length() == 1))
    assert int(alone.count().execute()) >= 0.01 * SMALL
    bound = obs.filter(obs.source_ref.startswith("mini_program#bind-"))
    assert int(bound.count().execute()) == int(alone.count().execute())


@pytest.mark.skipif(not HAS_ONEID, reason="siyu.services.oneid is not there yet")
def test_after_oneid_every_order_resolves_and_duplicates_are_one_person(seeded: Context) -> None:
    wh = seeded.warehouse
    orders, ids = wh.table("orders"), wh.table("identities")
    assert int(ids.filter(ids.brand_id == "demo").count().execute()) > 0
    unresolved = orders.anti_join(
        ids,
        (orders.brand_id == ids.brand_id)
        & (orders.customer_ref_type == ids.id_type)
        & (orders.customer_ref == ids.id_value),
    )
    assert int(unresolved.count().execute()) == 0
    # A duplicate's second phone (first seen alone on an order) ends up with the person holding its unionid.
    obs = wh.table("identity_observations")
    bound = obs.filter(obs.source_ref.startswith("mini_program#bind-"))
    flat = bound.select(bound.source_ref, ident=bound.identifiers.unnest())
    flat = flat.select(flat.source_ref, id_type=flat.ident["type"], id_value=flat.ident["value"])
    owners = (
        flat.join(ids, ["id_type", "id_value"]).group_by("source_ref").agg(people=lambda t: t.customer_id.nunique())
    )
    result = owners.execute()
    assert len(result) >= 0.01 * SMALL and (result.people == 1).all()
    customers = int(ids.filter(ids.brand_id == "demo").customer_id.nunique().execute())
    assert customers <= SMALL


def test_seeding_again_does_nothing_and_force_rebuilds(tmp_path: Path) -> None:
    ctx = Context.open(Settings(data_dir=tmp_path / "d"))
    try:
        cfg = DemoConfig(customers=200, seed=3)
        first = seed_demo(ctx, cfg, resolve=False)
        before = table_digest(ctx, "demo")
        again = seed_demo(ctx, cfg, resolve=False)
        assert first.seeded and not again.seeded and again.counts == {}
        assert table_digest(ctx, "demo") == before
        assert seeded_info(ctx, "demo")["customers"] == 200  # type: ignore[index]
        # Another brand seeded beside it is untouched by --force on demo.
        seed_demo(ctx, DemoConfig(brand_id="other", customers=150, seed=3), resolve=False)
        other = table_digest(ctx, "other")
        forced = seed_demo(ctx, cfg, force=True, resolve=False)
        assert forced.seeded and forced.counts["orders"] == first.counts["orders"]
        assert table_digest(ctx, "demo") == before
        assert table_digest(ctx, "other") == other
        # Logins: admin, operator and a guide bound to the first guide (its brand-prefixed twin for "other").
        admin = authenticate(ctx, "admin", "siyu-admin")
        guide = authenticate(ctx, "guide1", "siyu-guide")
        assert admin is not None and admin.role == "admin" and admin.brand_id == "demo"
        assert authenticate(ctx, "operator", "siyu-operator") is not None
        assert guide is not None and guide.role == "guide" and guide.guide_id == "g01"
        assert authenticate(ctx, "other.admin", "siyu-admin") is not None
        # Rows without a finished seed are not overwritten silently.
        with ctx.warehouse.transaction() as cur:
            cur.execute("INSERT INTO stores VALUES ('half', 's1', 'x', NULL)")
        with pytest.raises(Conflict) as err:
            seed_demo(ctx, DemoConfig(brand_id="half", customers=100))
        assert err.value.field == "brand" and "--force" in err.value.message
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"customers": 10}, "customers"), ({"months": 0}, "months"), ({"seed": -1}, "seed")]
)
def test_bad_parameters_name_the_field(ctx: Context, kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(SiyuError) as err:
        seed_demo(ctx, DemoConfig(**kwargs))  # type: ignore[arg-type]
    assert err.value.field == field
    assert count(ctx, "orders") == 0


def test_window_ends_on_the_fixed_date() -> None:
    cfg = DemoConfig(months=18)
    assert cfg.start == date(2025, 5, 1) and cfg.end == date(2026, 10, 31)
    assert cfg.end_at - cfg.start_at == timedelta(days=cfg.days)
    assert DemoConfig(months=3).start == date(2026, 8, 1)
    assert isinstance(ibis.literal(cfg.end_at), ibis.expr.types.Expr)


def test_identifiers_stay_unique_at_benchmark_scale() -> None:
    import numpy as np
    import pyarrow.compute as pc

    from siyu.services.demo.people import phones
    from siyu.services.demo.text import opaque

    idx = np.arange(1_000_000, dtype=np.int64)
    rng = np.random.default_rng(1)
    for values in (phones(idx, rng), opaque(idx, 11, "oLYu", 24), opaque(idx, 15, "wmLY", 28)):
        assert len(pc.unique(values)) == len(idx)
    sample = phones(idx[::50_000], rng).to_pylist()
    assert all(normalize("phone", p).value == p for p in sample)


def test_seed_and_logins_on_both_state_backends(any_ctx: Context) -> None:
    result = seed_demo(any_ctx, DemoConfig(customers=100, seed=9), resolve=False)
    assert result.seeded and result.counts["customers"] == 100
    assert {x.username for x in result.logins} >= {"admin", "operator", "guide1", "guide12"}
    guide = authenticate(any_ctx, "guide12", "siyu-guide")
    assert guide is not None and guide.guide_id == "g12" and guide.brand_id == "demo"
    again = seed_demo(any_ctx, DemoConfig(customers=100, seed=9), resolve=False)
    assert not again.seeded and len(again.logins) == len(result.logins)
