"""How numbers are shown (``siyu.display``): money ¥1,234.50, missing —, no float noise — the figures the demo walk
found on 我的业绩 and the scorecard (236354.90000000014, nan, 5261.8)."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from siyu.display import MISSING, display_value, is_money_field, money, money_cents, number


def test_money_has_cents_and_thousands() -> None:
    assert money(236354.90000000014) == "¥236,354.90"
    assert money(Decimal("251213.30")) == "¥251,213.30"
    assert money(np.float64(0.005)) in ("¥0.01", "¥0.00")  # float rounding of a half cent, either is fine
    assert display_value(251213.30000000016, "gmv") == "¥251,213.30"
    assert display_value(1500, "gmv_target") == "¥1,500.00"
    assert money_cents(236354.90000000014) == 236354.9 and money_cents(float("nan")) is None


def test_missing_is_a_dash() -> None:
    for v in (None, float("nan"), np.nan, pd.NA, pd.NaT):
        assert display_value(v) == MISSING and display_value(v, "gmv") == MISSING
    assert money(None) == MISSING and number(math.nan) == MISSING


def test_numbers_without_float_noise() -> None:
    assert display_value(5261.8) == "5261.8"
    assert display_value(0.1 + 0.2) == "0.3"
    assert display_value(np.int64(4931)) == "4931" and display_value(7) == "7"
    assert display_value(0.12345) == "0.1235" and display_value(True) == "True"
    assert display_value("g01") == "g01"
    assert display_value(datetime(2026, 11, 24, 8, 5, 59)) == "2026-11-24 16:05"  # stored UTC, shown in Beijing time
    assert display_value(date(2026, 10, 31)) == "2026-10-31"


def test_money_fields_by_name() -> None:
    assert all(is_money_field(f) for f in ("gmv", "gmv_target", "amount", "reward_cost", "channel_spend"))
    assert not any(is_money_field(f) for f in ("gmv_attainment", "reachable", "reply_minutes", None, ""))
