"""Brand time: every source stores naive UTC instants, and days are the brand's local (UTC+8) days.

An imported order placed at 00:30 Beijing time and a reply sent through the API at the same moment (16:30 UTC
the day before) must land on the same day; before this rule imports kept Beijing wall clocks and the API UTC, so
the two sat 8 hours apart and day rollups split them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest

from siyu.analytics.baselines import daily_series
from siyu.analytics.segments import _lit
from siyu.display import display_value, local_text
from siyu.domain.brand_time import brand_today, day_start_utc, local_day
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.imports import run_import
from siyu.services.ingest import ingest
from siyu.services.metrics import data_end, tables

# (order_id, what the spreadsheet shows, the UTC instant it is)
ORDERS = (
    ("A1", "2024-03-01 23:30", datetime(2024, 3, 1, 15, 30)),  # Beijing wall clock
    ("A2", "2024-03-02 00:30", datetime(2024, 3, 1, 16, 30)),
    ("A3", "2024-03-02T01:30:00+08:00", datetime(2024, 3, 1, 17, 30)),  # an explicit offset
    ("A4", "2024-03-01T18:00:00Z", datetime(2024, 3, 1, 18, 0)),  # UTC, i.e. 02:00 on 2 March in Beijing
    ("A5", "1709314200", datetime(2024, 3, 1, 17, 30)),  # unix seconds
    ("A6", "2024年3月3日", datetime(2024, 3, 2, 16, 0)),  # a date alone: local midnight
)


@pytest.fixture
def brand(ctx: Context, tmp_path: Path) -> str:
    create_brand(ctx, "acme", "Acme")
    rows = [{"订单号": oid, "下单时间": shown, "手机": "13800138000", "实付金额": "10"} for oid, shown, _ in ORDERS]
    path = tmp_path / "orders.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    job = run_import(ctx, "acme", "orders", path)
    assert (job.status, job.rows_ok, job.rows_failed) == ("done", len(ORDERS), 0), job.message
    _, key = write_keys.create_key(ctx, "acme")
    replies = [
        {"type": "track", "messageId": mid, "userId": "u1", "event": "Message Replied", "timestamp": at}
        for mid, at in (("r1", "2024-03-01T15:45:00Z"), ("r2", "2024-03-01T16:15:00.000Z"))
    ]
    ingest(ctx, orjson.dumps({"batch": replies}), None, key)
    return "acme"


def test_imported_wall_clocks_are_stored_as_utc_instants(ctx: Context, brand: str) -> None:
    got = dict(ctx.warehouse.fetch("SELECT order_id, ordered_at FROM orders WHERE brand_id = ?", [brand]))
    assert got == {oid: utc for oid, _, utc in ORDERS}


def test_imported_orders_and_api_events_share_the_brand_day(ctx: Context, brand: str) -> None:
    t = tables(ctx, brand)
    start, end = date(2024, 3, 1), date(2024, 3, 3)

    def per_day(step: str) -> dict[str, int]:
        frame = daily_series(t, step, start, end).execute()
        return {str(d)[:10]: int(v) for d, v in zip(frame["day"], frame["value"], strict=True)}

    # 00:30 Beijing (A2) and 00:15 Beijing (r2) are 2 March; 23:30 (A1) and 23:45 (r1) are 1 March
    assert per_day("orders") == {"2024-03-01": 1, "2024-03-02": 4, "2024-03-03": 1}
    assert per_day("interactions") == {"2024-03-01": 1, "2024-03-02": 1}
    # a period of one day is that Beijing day: 2 March holds A2..A5, not A1 (15:30 UTC on 1 March)
    frame = daily_series(t, "gmv", date(2024, 3, 2), date(2024, 3, 2)).execute()
    assert frame["value"].tolist() == [40.0]
    assert data_end(ctx, brand) == date(2024, 3, 3)  # A6 is 16:00 UTC on 2 March: the 3rd in Beijing


def test_times_are_shown_and_read_as_brand_local() -> None:
    assert display_value(datetime(2024, 3, 1, 16, 30)) == "2024-03-02 00:30"
    assert display_value(pd.Timestamp("2024-03-01 16:30:00+00:00")) == "2024-03-02 00:30"
    assert display_value(date(2024, 3, 2)) == "2024-03-02"
    assert local_text("2024-03-01T16:30:00.123456") == "2024-03-02 00:30"  # the API's ISO text of a stored time
    assert local_text("2024-03-02T00:30:00+08:00") == "2024-03-02 00:30" and local_text(None) == "—"
    # a table cell of a time field holds the API's ISO text: shown as Beijing time; dates and other text as they are
    assert display_value("2024-03-01T16:30:00", "created_at") == "2024-03-02 00:30"
    assert display_value("2024-03-01T16:30:00", "at") == "2024-03-02 00:30"
    assert display_value("2024-03-01", "next_at") == "2024-03-01"
    assert display_value("2024-03-01T16:30:00", "remark") == "2024-03-01T16:30:00"
    assert display_value("To be confirmed", "assigned_at") == "To be confirmed"
    assert local_day(datetime(2024, 3, 1, 15, 59)) == date(2024, 3, 1)
    assert local_day(datetime(2024, 3, 1, 16, 0)) == date(2024, 3, 2)
    assert day_start_utc(date(2024, 3, 2)) == datetime(2024, 3, 1, 16, 0)
    # today is Beijing's today, whatever the server's zone (read around the call, in case midnight passes)
    before = (datetime.now(UTC) + timedelta(hours=8)).date()
    today = brand_today()
    assert today in (before, (datetime.now(UTC) + timedelta(hours=8)).date())
    # a segment condition on a time: a wall clock is Beijing's, an offset is honoured
    assert _lit("2024-03-02 00:00", "timestamp") == datetime(2024, 3, 1, 16, 0)
    assert _lit("2024-03-02T00:00:00Z", "timestamp") == datetime(2024, 3, 2, 0, 0)
