"""The UCI Online Retail log (``online_retail.csv.gz``) as orders, vectorised in DuckDB.

Cleaning (shared/reference/rfm-aipl.md): keep rows with a CustomerID, drop cancellations (InvoiceNo starting
with "C"), keep Quantity > 0 and UnitPrice > 0.  order_id = InvoiceNo, customer_ref_type ``customer_id`` =
CustomerID, line amount = Quantity × UnitPrice (rounded to cents), order amount = sum of its lines.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from siyu.domain.brand_time import UTC_OFFSET
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.stores.state.models import utcnow

if TYPE_CHECKING:
    from siyu.services.imports.runner import ImportJobView, Progress

COLUMNS = {
    "InvoiceNo": "VARCHAR",
    "StockCode": "VARCHAR",
    "Description": "VARCHAR",
    "Quantity": "BIGINT",
    "InvoiceDate": "TIMESTAMP",
    "UnitPrice": "DECIMAL(18,4)",
    "CustomerID": "DOUBLE",
    "Country": "VARCHAR",
}
KEEP = "CustomerID IS NOT NULL AND NOT starts_with(InvoiceNo, 'C') AND Quantity > 0 AND UnitPrice > 0"


def execute(ctx: Context, job: ImportJobView, progress: Progress | None = None) -> None:
    """Load the file as orders + order lines + one identity observation per new order; update the job."""
    from siyu.services.imports.runner import _update, resolve_identities

    started = time.perf_counter()
    types = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    source_name = job.filename.rsplit("/", 1)[-1]
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        try:
            cur.execute(
                "CREATE OR REPLACE TEMP TABLE _or_raw AS SELECT row_number() OVER () AS rn, * "
                f"FROM read_csv($path, header = true, columns = {types}, timestampformat = '%Y-%m-%d %H:%M:%S')",
                {"path": job.filename},
            )
        except Exception as exc:  # duckdb raises several error classes for unreadable files
            raise SiyuError(
                f"{source_name}: cannot read it as the UCI Online Retail CSV ({exc}); expected columns "
                f"{', '.join(COLUMNS)}",
                field="file",
            ) from exc
        counts = cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE CustomerID IS NULL), "
            "count(*) FILTER (WHERE CustomerID IS NOT NULL AND starts_with(InvoiceNo, 'C')), "
            f"count(*) FILTER (WHERE {KEEP}) FROM _or_raw"
        ).fetchone()
        assert counts is not None
        total, no_customer, cancelled, kept = (int(c) for c in counts)
        _update(ctx, job.id, rows_total=total)
        if progress:
            progress(0, total)
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _or_lines AS SELECT InvoiceNo AS order_id, "
            "CAST(row_number() OVER (PARTITION BY InvoiceNo ORDER BY rn) AS INTEGER) AS line_no, "
            "StockCode AS sku, Description AS name, CAST(Quantity AS DECIMAL(18,3)) AS quantity, "
            "UnitPrice AS unit_price, CAST(round(Quantity * UnitPrice, 2) AS DECIMAL(18,2)) AS amount, "
            "CAST(CAST(CustomerID AS BIGINT) AS VARCHAR) AS customer_ref, "
            f"InvoiceDate - INTERVAL {int(UTC_OFFSET.total_seconds())} SECOND AS ordered_at, Country "  # local → UTC
            f"FROM _or_raw WHERE {KEEP}"
        )
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _or_orders AS SELECT order_id, min(customer_ref) AS customer_ref, "
            "min(ordered_at) AS ordered_at, CAST(sum(amount) AS DECIMAL(18,2)) AS amount, min(Country) AS country, "
            "count(*) AS lines, NOT EXISTS (SELECT 1 FROM orders o WHERE o.brand_id = $brand "
            "AND o.order_id = l.order_id) AS is_new FROM _or_lines l GROUP BY order_id",
            {"brand": job.brand_id},
        )
        row = cur.execute(
            "SELECT count(*) FILTER (WHERE is_new), coalesce(sum(lines) FILTER (WHERE is_new), 0), count(*) "
            "FROM _or_orders"
        ).fetchone()
        assert row is not None
        new_orders, new_lines, all_orders = int(row[0]), int(row[1]), int(row[2])
        cur.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount, currency, "
            "status, source_ref) SELECT $brand, order_id, 'customer_id', customer_ref, ordered_at, amount, 'GBP', "
            "'paid', $file || '#' || order_id FROM _or_orders WHERE is_new ORDER BY ordered_at, order_id",
            {"brand": job.brand_id, "file": source_name},
        )
        only_new = "" if new_orders == all_orders else " SEMI JOIN _or_orders o ON l.order_id = o.order_id AND o.is_new"
        if new_orders:
            cur.execute(
                "INSERT INTO order_lines (brand_id, order_id, line_no, sku, name, quantity, unit_price, amount) "
                "SELECT $brand, l.order_id, l.line_no, l.sku, l.name, l.quantity, l.unit_price, l.amount "
                f"FROM _or_lines l{only_new}",
                {"brand": job.brand_id},
            )
        cur.execute(
            "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
            "SELECT $brand, 'import:online_retail', $file || '#' || order_id, ordered_at, "
            "[{'type': 'customer_id', 'value': customer_ref}], json_object('country', country) "
            "FROM _or_orders WHERE is_new ORDER BY ordered_at, order_id",
            {"brand": job.brand_id, "file": source_name},
        )
        for name in ("_or_raw", "_or_lines", "_or_orders"):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
    loaded = time.perf_counter() - started
    filtered = total - kept
    already = kept - new_lines
    if progress:
        progress(total, total)
    notes = [
        f"{new_lines} order lines in {new_orders} orders imported in {loaded:.1f} s",
        f"{already} lines already present",
        f"{filtered} rows filtered by the cleaning rules ({no_customer} without CustomerID, {cancelled} "
        f"cancellations, {filtered - no_customer - cancelled} with Quantity or UnitPrice ≤ 0)",
    ]
    if new_orders:
        notes.append(resolve_identities(ctx, job.brand_id))
    _update(
        ctx,
        job.id,
        rows_done=total,
        rows_ok=new_lines,
        rows_skipped=filtered + already,
        rows_failed=0,
        status="done",
        message="; ".join(notes),
        finished_at=utcnow(),
    )
