"""The per-backend cache of built expressions and compiled SQL (``siyu.analytics.memo``,
``siyu.services.metrics.query_cache``): same results as plain Ibis, the current data on every call, one entry per
set of parameters, bounded, and a fallback for what cached SQL cannot run."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pyarrow as pa
import pytest

from siyu.analytics.aipl import AiplConfig, aipl_stage
from siyu.analytics.base import Tables, customer_order_totals, customer_relations
from siyu.analytics.lifecycle import lifecycle_stage
from siyu.analytics.memo import ExprMemo
from siyu.analytics.rfm import rfm_customers
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.metrics import fetch_arrow, fetch_scalar, restrict, tables
from siyu.services.metrics.query_cache import QueryCache, brand_tables, cache_of, to_arrow

BRAND = "qc"


def _sorted(tab: pa.Table) -> pa.Table:
    return tab.sort_by([(c, "ascending") for c in tab.column_names])


def _seed(ctx: Context) -> None:
    """Two customers with orders, a WeCom relation and a group membership; no events yet."""
    brands.create_brand(ctx, BRAND, "Query cache")
    ts = datetime.fromisoformat
    with ctx.warehouse.transaction() as cur:
        cur.executemany(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES (?, ?, ?, ?)",
            [(BRAND, "phone", "p1", "c1"), (BRAND, "phone", "p2", "c2"), (BRAND, "external_userid", "wm1", "c1"),
             (BRAND, "user_id", "u1", "c1"), (BRAND, "user_id", "u2", "c2")],
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount, status)"
            " VALUES (?, ?, 'phone', ?, ?, ?, 'paid')",
            [(BRAND, "o1", "p1", ts("2026-09-01 10:00"), 100), (BRAND, "o2", "p1", ts("2026-10-01 10:00"), 50),
             (BRAND, "o3", "p2", ts("2026-10-10 10:00"), 30)],
        )  # fmt: skip
        cur.execute(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state) VALUES (?, 'wm1', 'g1', ?,"
            " 'active')",
            [BRAND, ts("2026-10-20 10:00")],
        )


def _add_order(ctx: Context, order_id: str, ref: str, at: str, amount: float) -> None:
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount, status)"
            " VALUES (?, ?, 'phone', ?, ?, ?, 'paid')",
            [BRAND, order_id, ref, datetime.fromisoformat(at), amount],
        )


AS_OF = date(2026, 11, 1)


@pytest.mark.parametrize("as_of", [date(2026, 10, 31), date(2026, 3, 15)])
def test_cached_path_returns_exactly_what_ibis_returns(demo_ctx: Context, as_of: date) -> None:
    """On the demo brand: RFM, AIPL (default and another config), lifecycle, a guide-restricted count and a
    scalar, each run twice through the cache (miss, then hit) and compared with ``expr.to_pyarrow()``."""
    t = tables(demo_ctx, "demo")
    rel = customer_relations(t)
    guide = fetch_scalar(demo_ctx, rel.guide_id.min())
    own = rel.filter(rel.guide_id == guide).select("customer_id")  # a guide's scope
    exprs = [
        rfm_customers(t, as_of),
        rfm_customers(t, as_of, 90),
        aipl_stage(t, as_of),
        aipl_stage(t, as_of, AiplConfig(i_days=30, l_min_orders=3)),
        lifecycle_stage(t, as_of, 45),
        restrict(rfm_customers(t, as_of), own),
    ]
    cache = cache_of(demo_ctx.warehouse.ibis)
    for expr in exprs:
        expected = _sorted(expr.to_pyarrow())
        assert expected.num_rows > 0
        cache.sql.pop(expr.op(), None)  # other tests on this session backend may have compiled it already
        misses = cache.misses
        first = fetch_arrow(demo_ctx, expr)
        hits = cache.hits
        second = fetch_arrow(demo_ctx, expr)
        assert cache.hits == hits + 1 and cache.misses == misses + 1  # the second run used the cached SQL
        assert first.schema == expected.schema
        assert _sorted(first).equals(expected) and _sorted(second).equals(expected)
    total = rfm_customers(t, as_of).monetary.sum()
    assert fetch_scalar(demo_ctx, total) == pytest.approx(total.to_pyarrow().as_py(), rel=1e-12)


def test_a_change_in_the_data_shows_on_the_next_call(ctx: Context) -> None:
    """The cache holds queries, not results: new orders and a first event (into a table that was empty when the
    query was compiled) count on the next call, which reuses the cached expression and SQL."""
    _seed(ctx)
    t = tables(ctx, BRAND)

    def rfm() -> dict[str, tuple[int, float]]:
        out = fetch_arrow(ctx, rfm_customers(t, AS_OF)).to_pylist()
        return {r["customer_id"]: (r["frequency"], r["monetary"]) for r in out}

    def stages() -> dict[str, str]:
        return {r["customer_id"]: r["stage"] for r in fetch_arrow(ctx, aipl_stage(t, AS_OF)).to_pylist()}

    assert rfm() == {"c1": (2, 150.0), "c2": (1, 30.0)}
    assert stages() == {"c1": "L", "c2": "P"}
    cache = cache_of(ctx.warehouse.ibis)
    misses = cache.misses

    _add_order(ctx, "o4", "p2", "2026-10-25 10:00", 20)
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES (?, 'user_id', 'u3', 'c3')",
            [BRAND],
        )
        cur.execute(
            "INSERT INTO events (brand_id, message_id, type, event, user_id, timestamp, received_at)"
            " VALUES (?, 'm1', 'track', 'Message Clicked', 'u3', ?, ?)",
            [BRAND, datetime(2026, 10, 30, 9), datetime(2026, 10, 30, 9)],
        )
    assert rfm() == {"c1": (2, 150.0), "c2": (2, 50.0)}
    assert stages() == {"c1": "L", "c2": "L", "c3": "I"}
    assert cache.misses == misses  # no new compilation: the same SQL read the new rows

    with ctx.warehouse.transaction() as cur:
        cur.execute("DELETE FROM orders WHERE brand_id = ? AND order_id IN ('o3', 'o4')", [BRAND])
    assert rfm() == {"c1": (2, 150.0)}


def test_prepared_plans_do_not_keep_the_statistics_they_were_planned_on(ctx: Context) -> None:
    """A statement prepared while the data looked one way answers for the data as it is now: orders after the
    latest date seen at planning time, amounts beyond the old maximum, new customers (group keys) and new
    identities (join keys) all count. Each answer is checked against plain Ibis on the same data."""
    _seed(ctx)
    t = tables(ctx, BRAND)
    late = t.orders.filter(t.orders.ordered_at > datetime(2026, 10, 15))
    exprs = {
        "late_orders": late.count(),
        "big_amounts": t.orders.filter(t.orders.amount > 1_000).count(),
        "per_customer": customer_order_totals(t, AS_OF).select("customer_id", "orders", "amount"),
        "rfm": rfm_customers(t, AS_OF),
    }

    def both() -> tuple[dict[str, object], dict[str, object]]:
        cached = {k: _plain(fetch_arrow(ctx, e)) for k, e in exprs.items()}
        direct = {k: _plain(to_arrow(ctx.warehouse.ibis, e, use_cache=False)) for k, e in exprs.items()}
        return cached, direct

    cached, direct = both()
    assert cached == direct and cached["late_orders"] == 0 and cached["big_amounts"] == 0
    _add_order(ctx, "o9", "p9", "2026-10-28 09:00", 5_000)
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES (?, 'phone', 'p9', 'c9')",
            [BRAND],
        )
    cached, direct = both()
    assert cached == direct
    assert cached["late_orders"] == 1 and cached["big_amounts"] == 1
    assert "c9" in {r["customer_id"] for r in cached["rfm"]}  # type: ignore[union-attr]


def _plain(value: object) -> object:
    """Arrow results as comparable Python values (tables as rows sorted by customer)."""
    if isinstance(value, pa.Table):
        return sorted(value.to_pylist(), key=lambda r: str(r.get("customer_id")))
    return value.as_py() if hasattr(value, "as_py") else value


def test_parameters_do_not_share_an_entry(ctx: Context) -> None:
    """Another as-of date, window, AIPL config or new-customer window is another expression and another query;
    the same arguments given positionally, by keyword or left to their default share one."""
    _seed(ctx)
    t = tables(ctx, BRAND)
    assert rfm_customers(t, AS_OF) is rfm_customers(t, AS_OF, None) is rfm_customers(t, as_of=AS_OF)
    assert rfm_customers(t, AS_OF) is not rfm_customers(t, date(2026, 10, 5))
    assert rfm_customers(t, AS_OF) is not rfm_customers(t, AS_OF, 30)
    assert aipl_stage(t, AS_OF).equals(aipl_stage(t, AS_OF, AiplConfig()))  # equal: they share compiled SQL
    assert aipl_stage(t, AS_OF) is not aipl_stage(t, AS_OF, AiplConfig(l_min_orders=3))
    assert lifecycle_stage(t, AS_OF) is not lifecycle_stage(t, AS_OF, 7)

    def run(expr: ibis.Table) -> list[dict[str, object]]:
        return sorted(fetch_arrow(ctx, expr).to_pylist(), key=lambda r: str(r["customer_id"]))

    cache = cache_of(ctx.warehouse.ibis)
    before = len(cache.sql)
    assert [r["frequency"] for r in run(rfm_customers(t, AS_OF))] == [2, 1]
    assert [r["frequency"] for r in run(rfm_customers(t, date(2026, 10, 5)))] == [2]  # o3 is on 10-10
    assert [r["frequency"] for r in run(rfm_customers(t, AS_OF, 45))] == [1, 1]  # since 09-17: o2, o3
    assert [r["stage"] for r in run(aipl_stage(t, AS_OF))] == ["L", "P"]
    assert [r["stage"] for r in run(aipl_stage(t, AS_OF, AiplConfig(l_min_orders=3)))] == ["P", "P"]
    assert [r["stage"] for r in run(lifecycle_stage(t, AS_OF))] == ["new_purchased"]  # c1 joined 10-20
    assert [r["stage"] for r in run(lifecycle_stage(t, AS_OF, 7))] == ["old_repurchased"]
    assert len(cache.sql) == before + 7
    run(aipl_stage(t, AS_OF, AiplConfig()))
    assert len(cache.sql) == before + 7


def test_tables_and_caches_belong_to_one_backend(ctx: Context) -> None:
    """The brand's tables are bound once per backend; another backend (another thread's, or one over another
    connection) has its own tables, expressions and SQL, and a backend whose connection changed starts over."""
    _seed(ctx)
    backend = ctx.warehouse.ibis
    assert tables(ctx, BRAND) is tables(ctx, BRAND) is brand_tables(backend, BRAND)
    other = ibis.duckdb.from_connection(ctx.warehouse.cursor().cursor())
    t2 = brand_tables(other, BRAND)
    assert t2 is not tables(ctx, BRAND) and cache_of(other) is not cache_of(backend)
    expr = rfm_customers(t2, AS_OF)
    assert expr is not rfm_customers(tables(ctx, BRAND), AS_OF)
    assert _sorted(to_arrow(other, expr)).equals(_sorted(fetch_arrow(ctx, rfm_customers(tables(ctx, BRAND), AS_OF))))
    old = cache_of(other)
    other.con = ctx.warehouse.cursor().cursor()  # what a reconnect does
    assert cache_of(other) is not old and not cache_of(other).tables


def test_caches_are_bounded() -> None:
    """Both LRUs keep their most recently used entries up to their bound."""
    memo = ExprMemo(max_entries=2)
    for key in ("a", "b", "a", "c"):
        memo.get(key, lambda key=key: key.upper())
    assert len(memo) == 2 and memo.hits == 1 and memo.misses == 3
    built = []
    memo.get("b", lambda: built.append("b") or "B")
    assert built == ["b"]  # "b" was the least recently used and had been dropped

    con = ibis.duckdb.connect()
    cache = QueryCache(con.con, max_queries=2)
    exprs = [ibis.literal(i).name("x").as_table() for i in range(3)]
    for e in exprs:
        cache.compiled(con, e)
    assert list(cache.sql) == [exprs[1].op(), exprs[2].op()]


def test_what_cached_sql_cannot_run_goes_through_ibis(ctx: Context) -> None:
    """In-memory tables (they must be registered first) and other backends (SQLite here) are executed by Ibis,
    with the same results; an expression built on another backend is never run on this one."""
    _seed(ctx)
    t = tables(ctx, BRAND)
    mem = ibis.memtable({"customer_id": ["c2"]})
    expr = restrict(customer_order_totals(t, AS_OF), mem)
    assert fetch_arrow(ctx, expr).column("customer_id").to_pylist() == ["c2"]
    assert cache_of(ctx.warehouse.ibis).sql[expr.op()] is None

    lite = ibis.sqlite.connect()
    lite.raw_sql("CREATE TABLE nums AS SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3").close()
    total = lite.table("nums").n.sum()
    assert to_arrow(lite, total).as_py() == 6
    assert cache_of(lite).sql[total.op()] is None
    assert fetch_arrow(ctx, total).as_py() == 6  # built on SQLite: not compiled for DuckDB


def test_replace_gives_fresh_memo(ctx: Context) -> None:
    """A ``Tables`` changed with ``dataclasses.replace`` does not reuse expressions built on the original."""
    import dataclasses

    _seed(ctx)
    t = tables(ctx, BRAND)
    rfm_customers(t, AS_OF)
    i = t.identities
    t2: Tables = dataclasses.replace(t, identities=i.filter(i.customer_id != "c2"))
    assert len(t2.memo) == 0
    got = fetch_arrow(ctx, rfm_customers(t2, AS_OF)).column("customer_id").to_pylist()
    assert got == ["c1"]


def test_a_batch_runs_side_by_side_with_the_same_results(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fetch_arrows``: RFM, AIPL, lifecycle, a scalar and an in-memory-table query (run by Ibis) in one batch give
    what each gives alone, in the order asked; on a small brand the cached ones ran on three connections, each
    with its own prepared statements; new data counts on the next batch; DuckDB's global optimiser setting is
    left as it was. Above ``SIDE_BY_SIDE_MAX_ROWS`` the same batch runs one after another on one connection."""
    from siyu.services.metrics import fetch_arrows, query_cache

    _seed(ctx)
    t = tables(ctx, BRAND)
    mem = ibis.memtable({"customer_id": ["c2"]})
    exprs = [
        rfm_customers(t, AS_OF),
        aipl_stage(t, AS_OF),
        lifecycle_stage(t, AS_OF),
        t.orders.amount.sum(),
        restrict(customer_order_totals(t, AS_OF), mem),
    ]
    con = ctx.warehouse.cursor()
    setting = con.execute("SELECT current_setting('disabled_optimizers')").fetchone()

    def alone() -> list[object]:
        return [_plain(to_arrow(ctx.warehouse.ibis, e, use_cache=False)) for e in exprs]

    got = fetch_arrows(ctx, exprs)
    assert [_plain(g) for g in got] == alone()
    assert [r["frequency"] for r in _plain(got[0])] == [2, 1]  # type: ignore[union-attr]
    cache = cache_of(ctx.warehouse.ibis)
    assert len(cache.lanes) == query_cache.LANES == 3
    assert all(len(lane.prepared) >= 1 for lane in cache.lanes)  # each lane ran (and prepared) its share
    assert con.execute("SELECT current_setting('disabled_optimizers')").fetchone() == setting

    _add_order(ctx, "o5", "p2", "2026-10-26 10:00", 70)
    again = [_plain(g) for g in fetch_arrows(ctx, exprs)]
    assert again == alone() and again[3] == 250
    assert {r["customer_id"]: r["frequency"] for r in again[0]} == {"c1": 2, "c2": 2}  # type: ignore[union-attr]

    monkeypatch.setattr(query_cache, "SIDE_BY_SIDE_MAX_ROWS", 2)  # orders (4 rows) is now "large"
    monkeypatch.setattr(query_cache, "TABLE_SIZES_TTL_S", 0.0)
    fresh = ibis.duckdb.from_connection(ctx.warehouse.cursor().cursor())
    t2 = brand_tables(fresh, BRAND)
    one_by_one = query_cache.to_arrow_many(fresh, [rfm_customers(t2, AS_OF), aipl_stage(t2, AS_OF)])
    assert len(cache_of(fresh).lanes) == 1
    assert [_plain(x) for x in one_by_one] == again[:2]


def test_batches_on_many_threads_at_once(ctx: Context) -> None:
    """Several threads, each with its own backend, run batches at the same time (lanes and the process-wide
    prepare lock): every result equals the single-threaded one."""
    import threading

    from siyu.services.metrics import fetch_arrows

    _seed(ctx)
    expected = [_plain(x) for x in fetch_arrows(ctx, _three(tables(ctx, BRAND)))]
    errors: list[BaseException] = []
    results: list[list[object]] = []

    def worker() -> None:
        try:
            for _ in range(5):
                results.append([_plain(x) for x in fetch_arrows(ctx, _three(tables(ctx, BRAND)))])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 20 and all(r == expected for r in results)


def _three(t: Tables) -> list[ibis.Table]:
    return [rfm_customers(t, AS_OF), aipl_stage(t, AS_OF), lifecycle_stage(t, AS_OF)]
