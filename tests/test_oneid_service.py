"""OneID on real DuckDB/SQLite stores: incremental resolution, rebuild, merges, conflicts, split."""

from __future__ import annotations

import random
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.config import Settings
from siyu.domain.models import Identity
from siyu.services import brands, oneid
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError
from siyu.stores.state.models import BrandRow

B = "acme"
T0 = datetime(2026, 1, 1, 9, 0)
PHONE = Identity("phone", "+8613800138000")
UNION = Identity("unionid", "oU1")


def observe(ctx: Context, *obs: tuple[str, list[Identity], dict[str, object], int]) -> None:
    """Write observations (ref, identifiers, traits, minutes after T0) in one transaction."""
    with ctx.warehouse.transaction() as tx:
        oneid.add_observations(
            tx,
            B,
            [
                oneid.Observation("test", ref, T0 + timedelta(minutes=m), tuple(ids), traits)
                for ref, ids, traits, m in obs
            ],
        )


def partition(ctx: Context, brand: str = B) -> set[frozenset[tuple[str, str]]]:
    rows = ctx.warehouse.fetch("SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = ?", [brand])
    by: dict[str, set[tuple[str, str]]] = {}
    for t, v, c in rows:
        by.setdefault(c, set()).add((t, v))
    return {frozenset(s) for s in by.values()}


@pytest.fixture
def bctx(ctx: Context) -> Context:
    brands.create_brand(ctx, B, "Acme")
    return ctx


def test_incremental_merge_is_logged_with_evidence_and_oldest_id_survives(bctx: Context) -> None:
    ctx = bctx
    observe(ctx, ("wecom#1", [UNION], {"name": "李雷"}, 0), ("crm.csv#row2", [PHONE], {"city": "上海"}, 10))
    s1 = oneid.resolve_pending(ctx, B)
    assert (s1.observations, s1.identifiers, s1.customers, s1.merges) == (2, 2, 2, 0)
    old_union = oneid.customer_of(ctx, B, UNION)
    old_phone = oneid.customer_of(ctx, B, PHONE)
    assert old_union and old_phone and old_union != old_phone
    assert old_union.startswith("c_") and len(old_union) == 14

    observe(ctx, ("event:m3", [UNION, PHONE], {"name": "李雷雷"}, 20))
    s2 = oneid.resolve_pending(ctx, B)
    assert s2.merges == 1 and s2.customers == 0
    assert oneid.customer_of(ctx, B, PHONE) == old_union == oneid.customer_of(ctx, B, UNION)  # older id survives
    [merge] = oneid.merge_history(ctx, B, old_union)
    assert merge["absorbed_customer_id"] == old_phone
    assert (merge["id_type"], merge["id_value"]) == ("phone", PHONE.value)
    assert (merge["other_type"], merge["other_value"]) == ("unionid", "oU1")
    assert (merge["source_kind"], merge["source_ref"]) == ("test", "event:m3")
    # old links redirect
    assert oneid.resolve_customer_id(ctx, B, old_phone) == old_union
    assert oneid.resolve_customer_id(ctx, B, "c_000000000000") is None
    # the profile: latest trait wins, older traits fill gaps, created_at = first seen
    name, city, phone, created = ctx.warehouse.fetch(
        "SELECT name, city, phone, created_at FROM customers WHERE brand_id = ? AND customer_id = ?", [B, old_union]
    )[0]
    assert (name, city, phone, created) == ("李雷雷", "上海", PHONE.value, T0)
    assert ctx.warehouse.fetch("SELECT count(*) FROM customers WHERE brand_id = ?", [B])[0][0] == 1
    # nothing new → nothing done
    assert oneid.resolve_pending(ctx, B).observations == 0


def test_conflicts_are_recorded_not_merged(bctx: Context) -> None:
    ctx = bctx
    other = Identity("unionid", "oU2")
    observe(ctx, ("a", [UNION, PHONE], {}, 0), ("b", [other, PHONE], {}, 1))
    stats = oneid.resolve_pending(ctx, B)
    assert stats.conflicts == 1
    assert len(partition(ctx)) == 2
    [c] = oneid.list_conflicts(ctx, B)
    assert c["reason"] == "max_per_person:unionid:1"
    assert {(c["id_type"], c["id_value"]), (c["other_type"], c["other_value"])} == {
        ("unionid", "oU2"),
        ("phone", PHONE.value),
    }
    assert c["customer_id"] != c["other_customer_id"]
    # the same conflict seen again is not recorded twice; rebuild keeps exactly one open conflict
    observe(ctx, ("c", [other, PHONE], {}, 2))
    assert oneid.resolve_pending(ctx, B).conflicts == 0
    assert oneid.rebuild(ctx, B).conflicts == 1
    assert len(oneid.list_conflicts(ctx, B)) == 1


def test_shared_anonymous_id_is_a_conflict(bctx: Context) -> None:
    ctx = bctx
    observe(
        ctx, *[(f"e{k}", [Identity("anonymous_id", "tablet"), Identity("user_id", f"u{k}")], {}, k) for k in range(5)]
    )
    stats = oneid.resolve_pending(ctx, B)
    assert stats.shared == 1
    assert any(c["reason"] == "shared:anonymous_id:3" for c in oneid.list_conflicts(ctx, B))
    rebuilt = oneid.rebuild(ctx, B)
    assert rebuilt.shared == 1
    # after rebuild the shared tablet belongs to nobody and the 5 users are 5 people
    assert partition(ctx) == {frozenset({("user_id", f"u{k}")}) for k in range(5)}


def test_brand_policy_from_settings(any_ctx: Context) -> None:
    """The brand's OneID policy comes from the state database (SQLite and PostgreSQL)."""
    ctx = any_ctx
    brands.create_brand(ctx, B, "Acme")
    with ctx.sessions() as s:
        row = s.get(BrandRow, B)
        assert row is not None
        row.settings = {"oneid": {"types": {"email": {"trust": 0}}}}
        s.commit()
    mail = Identity("email", "x@acme.cn")
    observe(ctx, ("a", [UNION, mail], {}, 0), ("b", [PHONE, mail], {}, 1))
    oneid.resolve_pending(ctx, B)
    assert len(partition(ctx)) == 2 and oneid.customer_of(ctx, B, mail) is None
    with ctx.sessions() as s:
        row = s.get(BrandRow, B)
        assert row is not None
        row.settings = {"oneid": {"types": {"email": {"trust": "high"}}}}
        s.commit()
    with pytest.raises(SiyuError, match="trust") as err:
        oneid.rebuild(ctx, B)
    assert err.value.field == "settings.oneid"


def _orders_and_events(ctx: Context) -> None:
    with ctx.warehouse.transaction() as tx:
        tx.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount) VALUES "
            "(?, 'o1', 'phone', ?, ?, 100), (?, 'o2', 'unionid', 'oU1', ?, 30), (?, 'o3', 'email', 'w@x.cn', ?, 7)",
            [B, PHONE.value, T0, B, T0, B, T0],
        )
        tx.execute(
            "INSERT INTO events (brand_id, message_id, type, event, user_id, timestamp, received_at) VALUES "
            "(?, 'm1', 'track', 'Viewed', 'u-li', ?, ?), (?, 'm2', 'track', 'Paid', 'u-wrong', ?, ?)",
            [B, T0, T0, B, T0, T0],
        )


def spend(ctx: Context, customer_id: str) -> Decimal:
    """Orders attributed to a customer through identities (how every reader attributes records)."""
    t = ctx.warehouse.table("orders")
    i = ctx.warehouse.table("identities")
    j = t.join(i, [t.brand_id == i.brand_id, t.customer_ref_type == i.id_type, t.customer_ref == i.id_value])
    expr = j.filter(j.customer_id == customer_id).amount.sum()
    value = expr.to_pyarrow().as_py()
    return Decimal(str(value)) if value is not None else Decimal(0)


def events_of(ctx: Context, customer_id: str) -> set[str]:
    t = ctx.warehouse.table("events")
    i = ctx.warehouse.table("identities").filter(lambda x: x.id_type == "user_id")
    j = t.join(i, [t.brand_id == i.brand_id, t.user_id == i.id_value])
    return set(j.filter(j.customer_id == customer_id).message_id.to_pyarrow().to_pylist())


def test_split_reattributes_orders_and_events(bctx: Context) -> None:
    ctx = bctx
    wrong_mail = Identity("email", "w@x.cn")
    wrong_user = Identity("user_id", "u-wrong")
    observe(
        ctx,
        ("crm#1", [UNION, PHONE, Identity("user_id", "u-li")], {"name": "李雷"}, 0),
        ("shop#7", [wrong_mail, wrong_user], {"name": "韩梅梅"}, 5),
    )
    oneid.resolve_pending(ctx, B)
    li = oneid.customer_of(ctx, B, UNION)
    assert li is not None
    # a wrong observation glues the two people together
    observe(ctx, ("typo#9", [PHONE, wrong_mail], {}, 10))
    assert oneid.resolve_pending(ctx, B).merges == 1
    assert oneid.customer_of(ctx, B, wrong_user) == li
    _orders_and_events(ctx)
    assert spend(ctx, li) == Decimal(137)
    assert events_of(ctx, li) == {"m1", "m2"}

    with pytest.raises(SiyuError, match="not an identifier") as err:
        oneid.split(ctx, B, li, [Identity("email", "nobody@x.cn")], "typo")
    assert err.value.field == "identifiers"
    with pytest.raises(NotFound):
        oneid.split(ctx, B, "c_ffffffffffff", [wrong_mail], "typo")
    with pytest.raises(SiyuError, match="at least one identifier must stay"):
        oneid.split(ctx, B, li, [UNION, PHONE, wrong_mail, wrong_user, Identity("user_id", "u-li")], "all")

    absorbed = oneid.merge_history(ctx, B, li)[0]["absorbed_customer_id"]
    new = oneid.split(ctx, B, absorbed, [wrong_mail, wrong_user], "typo in shop import")  # old id redirects
    assert new != li and new.startswith("c_")
    assert oneid.customer_of(ctx, B, wrong_mail) == new == oneid.customer_of(ctx, B, wrong_user)
    assert oneid.customer_of(ctx, B, PHONE) == li
    # records follow the people: no record was rewritten, the join re-attributes them
    assert spend(ctx, li) == Decimal(130) and spend(ctx, new) == Decimal(7)
    assert events_of(ctx, li) == {"m1"} and events_of(ctx, new) == {"m2"}
    # the merge log entry is undone, the split is recorded, profiles are recomputed
    [merge] = oneid.merge_history(ctx, B, li)
    assert merge["undone_at"] is not None
    assert ctx.warehouse.fetch("SELECT count(*) FROM identity_splits WHERE brand_id = ?", [B])[0][0] == 2 * 3
    names = dict(ctx.warehouse.fetch("SELECT customer_id, name FROM customers WHERE brand_id = ?", [B]))
    assert names == {li: "李雷", new: "韩梅梅"}

    # the split holds: the same wrong evidence again, incremental or full rebuild, does not re-merge
    observe(ctx, ("typo#10", [PHONE, wrong_mail], {}, 20))
    assert oneid.resolve_pending(ctx, B).merges == 0
    assert oneid.customer_of(ctx, B, wrong_mail) == new
    oneid.rebuild(ctx, B)
    assert oneid.customer_of(ctx, B, wrong_mail) == new and oneid.customer_of(ctx, B, PHONE) == li


def test_rebuild_keeps_ids_and_logs_merges_of_old_customers(bctx: Context) -> None:
    ctx = bctx
    observe(ctx, ("a", [UNION], {}, 0), ("b", [PHONE], {}, 5))
    oneid.resolve_pending(ctx, B)
    u, p = oneid.customer_of(ctx, B, UNION), oneid.customer_of(ctx, B, PHONE)
    stats = oneid.rebuild(ctx, B)
    assert stats.merges == 0 and stats.customers == 2
    assert (oneid.customer_of(ctx, B, UNION), oneid.customer_of(ctx, B, PHONE)) == (u, p)
    # link them, but only rebuild (not incremental) sees it: rebuild logs the merge with evidence
    with ctx.warehouse.transaction() as tx:
        oneid.add_observations(tx, B, [oneid.Observation("test", "c", T0, (UNION, PHONE))])
    stats = oneid.rebuild(ctx, B)
    assert stats.merges == 1 and stats.customers == 1
    assert oneid.customer_of(ctx, B, PHONE) == u
    [m] = oneid.merge_history(ctx, B, u)
    assert m["absorbed_customer_id"] == p and m["source_ref"] == "c"
    first, last = ctx.warehouse.fetch(
        "SELECT first_seen_at, last_seen_at FROM identities WHERE brand_id = ? AND id_type = 'phone'", [B]
    )[0]
    assert (first, last) == (T0, T0 + timedelta(minutes=5))


def random_people(rnd: random.Random, n_people: int) -> list[tuple[str, list[Identity]]]:
    """Observations of people that respect every limit (so no conflict can occur)."""
    out: list[tuple[str, list[Identity]]] = []
    for p in range(n_people):
        ids = [Identity("unionid", f"u{p}"), Identity("phone", f"+86138{p:08d}"), Identity("email", f"p{p}@x.cn")]
        ids += [Identity("anonymous_id", f"a{p}-{k}") for k in range(rnd.randint(0, 2))]
        rnd.shuffle(ids)
        for k in range(rnd.randint(1, 4)):
            out.append((f"p{p}-{k}", rnd.sample(ids, rnd.randint(1, min(3, len(ids))))))
    rnd.shuffle(out)
    return out


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 12), st.lists(st.integers(1, 10), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_incremental_over_random_batches_equals_rebuild(n_people: int, cuts: list[int], rnd: random.Random) -> None:
    obs = random_people(rnd, n_people)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp)))
        try:
            brands.create_brand(ctx, B, "Acme")
            pos = 0
            for cut in [*cuts, len(obs)]:
                batch = obs[pos : pos + cut]
                pos += cut
                if batch:
                    observe(ctx, *[(ref, ids, {}, k) for k, (ref, ids) in enumerate(batch)])
                    assert oneid.resolve_pending(ctx, B).conflicts == 0
                if pos >= len(obs):
                    break
            incremental = partition(ctx)
            ids_before = {k: oneid.customer_of(ctx, B, Identity(*k)) for g in incremental for k in g}
            oneid.rebuild(ctx, B)
            assert partition(ctx) == incremental
            assert {k: oneid.customer_of(ctx, B, Identity(*k)) for k in ids_before} == ids_before  # ids stable
            assert ctx.warehouse.fetch("SELECT count(*) FROM customers WHERE brand_id = ?", [B])[0][0] == len(
                incremental
            )
        finally:
            ctx.close()


@pytest.mark.parametrize("mode", ["incremental", "rebuild"])
def test_records_joined_into_a_new_person_are_logged_once(bctx: Context, mode: str) -> None:
    """Two earlier records' people joined by a third record: a 'record:' merge with that evidence, in both modes;
    identifiers arriving together in one record are not a merge; a second rebuild does not log it again."""
    ctx = bctx
    email = Identity("email", "li@x.cn")
    observe(
        ctx,
        ("a", [UNION], {}, 0),
        ("b", [PHONE, email], {}, 1),  # phone and email together: one record, no merge
        ("c", [UNION, PHONE], {}, 2),
    )
    stats = oneid.resolve_pending(ctx, B) if mode == "incremental" else oneid.rebuild(ctx, B)
    assert (stats.customers, stats.merges) == (1, 1)
    cid = oneid.customer_of(ctx, B, UNION)
    [m] = oneid.merge_history(ctx, B, cid)
    assert (m["customer_id"], m["absorbed_customer_id"], m["source_ref"]) == (cid, "", "c")
    assert m["rule"] in ("record:phone~unionid", "record:unionid~phone")
    assert {(m["id_type"], m["other_type"])} <= {("phone", "unionid"), ("unionid", "phone")}
    oneid.rebuild(ctx, B)
    assert len(oneid.merge_history(ctx, B, cid)) == 1
    assert oneid.resolve_customer_id(ctx, B, cid) in (None, cid)  # no absorbed-id loop through ''


def test_rebuild_does_not_log_again_a_merge_an_incremental_run_logged(bctx: Context) -> None:
    ctx = bctx
    observe(ctx, ("a", [UNION], {}, 0), ("b", [PHONE], {}, 1))
    oneid.resolve_pending(ctx, B)
    observe(ctx, ("c", [UNION, PHONE], {}, 2))
    assert oneid.resolve_pending(ctx, B).merges == 1
    cid = oneid.customer_of(ctx, B, UNION)
    oneid.rebuild(ctx, B)
    [m] = oneid.merge_history(ctx, B, cid)
    assert m["absorbed_customer_id"] != "" and m["source_ref"] == "c"


def test_late_commit_under_the_watermark_is_not_lost(bctx: Context) -> None:
    """A writer that does not hold write_lock may commit a lower obs_id after a resolution: detected, rebuilt."""
    import threading

    ctx = bctx
    inserted, go, done = threading.Event(), threading.Event(), threading.Event()

    def slow_writer() -> None:
        with ctx.warehouse.transaction() as tx:
            oneid.add_observations(tx, B, [oneid.Observation("slow", "s1", T0, (UNION, PHONE))])
            inserted.set()
            go.wait(10)
        done.set()

    th = threading.Thread(target=slow_writer)
    th.start()
    assert inserted.wait(10)
    observe(ctx, ("fast", [Identity("email", "f@x.cn")], {}, 1))
    assert oneid.resolve_pending(ctx, B).observations == 1
    go.set()
    assert done.wait(10)
    th.join()
    stats = oneid.resolve_pending(ctx, B)
    assert stats.mode == "rebuild"
    assert oneid.customer_of(ctx, B, UNION) == oneid.customer_of(ctx, B, PHONE) is not None


def test_deferred_last_seen_is_flushed(settings: Settings) -> None:
    """With defer_last_seen, re-seen identifiers' times are written later: on flush, on split, on close."""
    ctx = Context.open(settings)
    try:
        brands.create_brand(ctx, B, "Acme")
        oneid.defer_last_seen(ctx, 3600)
        observe(ctx, ("a", [UNION, PHONE], {}, 0))
        oneid.resolve_pending(ctx, B)
        observe(ctx, ("b", [PHONE, Identity("email", "n@x.cn")], {}, 30))
        oneid.resolve_pending(ctx, B)

        def last_seen() -> datetime:
            return ctx.warehouse.fetch(
                "SELECT last_seen_at FROM identities WHERE brand_id = ? AND id_type = 'phone'", [B]
            )[0][0]

        assert last_seen() == T0  # deferred
        email_seen = ctx.warehouse.fetch("SELECT first_seen_at FROM identities WHERE id_type = 'email'")[0][0]
        assert email_seen == T0 + timedelta(minutes=30)  # new identifiers are written at once
        assert oneid.flush_seen(ctx, B) == 1
        assert last_seen() == T0 + timedelta(minutes=30)
        observe(ctx, ("c", [PHONE], {}, 60))
        oneid.resolve_pending(ctx, B)
        assert last_seen() == T0 + timedelta(minutes=30)
    finally:
        ctx.close()  # flushes
    ctx = Context.open(settings)
    try:
        assert ctx.warehouse.fetch("SELECT last_seen_at FROM identities WHERE id_type = 'phone'")[0][
            0
        ] == T0 + timedelta(minutes=60)
    finally:
        ctx.close()


def test_one_unionid_claiming_phones_beyond_the_limit(bctx: Context) -> None:
    ctx = bctx
    phones = [Identity("phone", f"+861380013800{k}") for k in range(3)]
    observe(ctx, *[(f"wx{k}", [UNION, p], {}, k) for k, p in enumerate(phones)])
    stats = oneid.resolve_pending(ctx, B)
    assert stats.conflicts == 1
    [c] = oneid.list_conflicts(ctx, B)
    assert c["reason"] == "max_per_person:phone:2"
    owner = oneid.customer_of(ctx, B, UNION)
    assert sum(oneid.customer_of(ctx, B, p) == owner for p in phones) == 2
    # rebuild agrees on which two phones stay (canonical order), and keeps the conflict
    before = partition(ctx)
    assert oneid.rebuild(ctx, B).conflicts == 1
    assert partition(ctx) == before
