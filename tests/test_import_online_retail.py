"""The UCI Online Retail log imports as orders and reproduces the reference figures exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd

from siyu.services import brands
from siyu.services.context import Context
from siyu.services.imports import run_import


def _pandas_figures(path: Path) -> tuple[int, int, Decimal]:
    """Independent computation from the raw file with pandas (the cleaning rules of rfm-aipl.md)."""
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "float64"})
    keep = raw[
        raw["CustomerID"].notna()
        & ~raw["InvoiceNo"].str.startswith("C")
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
    ]
    revenue = sum(
        (Decimal(str(q)) * Decimal(str(p))).quantize(Decimal("0.01"))
        for q, p in zip(keep["Quantity"], keep["UnitPrice"], strict=True)
    )
    return len(keep), int(keep["CustomerID"].nunique()), Decimal(revenue)


def test_online_retail_reference_figures(ctx: Context, shared_dir: Path) -> None:
    path = shared_dir / "data" / "online_retail" / "online_retail.csv.gz"
    brands.create_brand(ctx, "retail", "UCI Online Retail")
    job = run_import(ctx, "retail", "online-retail", path)
    assert job.status == "done", job.message
    assert (job.rows_total, job.rows_ok, job.rows_failed) == (541_909, 397_884, 0)

    lines = ctx.warehouse.table("order_lines").filter(lambda t: t.brand_id == "retail")
    orders = ctx.warehouse.table("orders").filter(lambda t: t.brand_id == "retail")
    n_lines = int(lines.count().execute())
    revenue = Decimal(str(lines.amount.sum().execute()))
    customers = int(orders.customer_ref.nunique().execute())
    order_total = Decimal(str(orders.amount.sum().execute()))
    assert (n_lines, customers, revenue) == (397_884, 4_338, Decimal("8911407.90"))
    assert order_total == revenue
    assert set(orders.customer_ref_type.execute()) == {"customer_id"}
    assert (n_lines, customers, revenue) == _pandas_figures(path)

    obs = ctx.warehouse.table("identity_observations").filter(lambda t: t.source_kind == "import:online_retail")
    assert int(obs.count().execute()) == int(orders.count().execute())

    again = run_import(ctx, "retail", "online_retail", path)
    assert (again.rows_ok, again.rows_skipped) == (0, 541_909)
    assert int(lines.count().execute()) == 397_884
