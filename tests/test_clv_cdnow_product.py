"""CDNOW through the product: the transaction log imported as a brand's orders (the generic orders import), then
the CLV service — the published estimates and the published summary must come out of the product, not only out of
the numerical modules."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from siyu.clv import bgnbd
from siyu.services import brands
from siyu.services.clv import fitting, validation
from siyu.services.clv.fitting import FitOptions
from siyu.services.context import Context
from siyu.services.imports import run_import

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"


@pytest.fixture(scope="module")
def cdnow_brand(tmp_path_factory: pytest.TempPathFactory) -> Context:
    from siyu.config import Settings

    if not CDNOW.exists():
        pytest.skip("../shared is not beside the checkout")
    ctx = Context.open(Settings(data_dir=tmp_path_factory.mktemp("cdnow") / "data"))
    brands.create_brand(ctx, "cdnow", "CDNOW 1/10 sample")
    src = tmp_path_factory.mktemp("cdnow_csv") / "cdnow_orders.csv"
    with open(CDNOW / "CDNOW_sample.txt") as raw, open(src, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["订单号", "下单日期", "实付金额", "会员号"])
        for n, line in enumerate(raw):
            _master, sample, day, _cds, dollars = line.split()
            w.writerow([f"cd{n:05d}", f"{day[:4]}-{day[4:6]}-{day[6:]}", dollars, f"m{int(sample):04d}"])
    job = run_import(ctx, "cdnow", "orders", src)
    assert job.status == "done" and job.rows_failed == 0, job.message
    return ctx


def test_published_bgnbd_estimates_out_of_the_product(cdnow_brand: Context) -> None:
    fit = fitting.fit_brand(cdnow_brand, "cdnow", FitOptions(model="bgnbd", calibration_end=date(1997, 9, 30)))
    p = fit["params"]
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(fit["log_likelihood"], 1) == -9582.4
    assert fit["customers"] == 2357


def test_validation_on_cdnow_matches_the_published_summary(cdnow_brand: Context) -> None:
    v = validation.validate(cdnow_brand, "cdnow", "bgnbd", date(1997, 9, 30), date(1998, 6, 30))
    ref = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    counts = {r["x"]: r["customers"] for r in v["by_frequency"]}
    expected = ref["x"].clip(upper=7).value_counts()
    assert counts == {(f"{k}+" if k == 7 else str(k)): int(n) for k, n in expected.items()}
    assert round(v["fit"]["params"]["r"], 3) == 0.243
    # the holdout (1997-10-01 .. 1998-06-30): actual purchase days counted from the raw file, predicted = the
    # published summary through the numerical model directly
    raw = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None, names=["m", "id", "day", "n", "usd"])
    hold = raw[(raw.day > 19970930) & (raw.day <= 19980630)].drop_duplicates(["id", "day"])
    assert v["errors"]["holdout_actual"] == len(hold) == 1882
    fit = bgnbd.fit(ref["x"], ref["t_x"], ref["T"])
    weeks = (date(1998, 6, 30) - date(1997, 9, 30)).days / 7
    direct = bgnbd.conditional_expected_purchases(fit, weeks, ref["x"], ref["t_x"], ref["T"]).sum()
    assert v["errors"]["holdout_predicted"] == pytest.approx(direct, rel=1e-4)  # CSV times are rounded to 0.01
