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


def test_cli_online_retail_cleaning_rules(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from siyu.cli.main import app
    from siyu.config import Settings

    path = tmp_path / "retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
        "536365,71053,LANTERN,2,2010-12-01 08:26:00,3.333,17850.0,United Kingdom\n"
        "536366,22633,WARMER,6,2010-12-01 08:28:00,1.85,,United Kingdom\n"  # no CustomerID
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom\n"  # cancellation
        "536380,22961,JAM,0,2010-12-01 09:41:00,1.45,14527.0,United Kingdom\n"  # quantity 0
        "536381,22139,SET,1,2010-12-01 09:45:00,0,15311.0,United Kingdom\n"  # price 0
        "536382,10002,BUS,12,2010-12-01 09:45:00,0.85,15311.0,United Kingdom\n",
        encoding="utf-8",
    )
    env = {"SIYU_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    out = CliRunner().invoke(app, ["import", "online-retail", str(path), "--brand", "uk"], env=env)
    assert out.exit_code == 0, out.output
    assert "3 order lines in 2 orders" in out.output and "1 cancellations" in out.output
    ctx = Context.open(Settings(data_dir=tmp_path / "data"))
    try:
        orders = ctx.warehouse.fetch("SELECT order_id, customer_ref, amount FROM orders ORDER BY 1")
        assert orders == [("536365", "17850", Decimal("21.97")), ("536382", "15311", Decimal("10.20"))]
        lines = ctx.warehouse.fetch("SELECT order_id, line_no, amount FROM order_lines ORDER BY 1, 2")
        assert lines == [
            ("536365", 1, Decimal("15.30")),
            ("536365", 2, Decimal("6.67")),
            ("536382", 1, Decimal("10.20")),
        ]
        # A later extract overlapping the first: only the new invoice lands.
        later = tmp_path / "retail2.csv"
        later.write_text(path.read_text() + "536400,85123A,HEART,2,2010-12-02 10:00:00,2.55,17850.0,United Kingdom\n")
        job = run_import(ctx, "uk", "online_retail", later)
        assert (job.rows_ok, job.rows_skipped) == (1, 7)
        assert ctx.warehouse.fetch("SELECT count(*), sum(amount) FROM order_lines") == [(4, Decimal("37.27"))]
    finally:
        ctx.close()
