"""The warehouse adapter: schema and thread-safe Ibis reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from siyu.services.context import Context


def test_ibis_reads_from_many_threads_at_once(ctx: Context) -> None:
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO stores SELECT 'b', 's' || i::VARCHAR, 'store ' || i::VARCHAR, NULL FROM range(500) t(i)"
        )

    def count(_: int) -> int:
        t = ctx.warehouse.table("stores")
        return int(t.filter(t.brand_id == "b").count().execute())

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(count, range(200))) == [500] * 200


def test_each_thread_has_its_own_backend(ctx: Context) -> None:
    main = ctx.warehouse.ibis
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(lambda: ctx.warehouse.ibis).result()
    assert main is ctx.warehouse.ibis and other is not main
