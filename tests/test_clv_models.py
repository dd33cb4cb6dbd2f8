"""CLV models against the published CDNOW figures (btyd.md), an independent peer (lifetimes 0.11.3) and
independent numerical computations (scipy's hyp2f1, finite differences, simulation)."""

from __future__ import annotations

import warnings
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import gammaln, hyp2f1

from siyu.analytics.clv_summary import summary
from siyu.clv import bgnbd, gamma_gamma, mbgnbd, pareto_nbd, sbg, simulate, validation, value
from siyu.clv.data import compress
from siyu.errors import SiyuError

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    raw = pd.read_csv(
        CDNOW / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master", "sample", "date", "cds", "dollars"],
        dtype={"date": str, "dollars": str},
    )
    return pd.DataFrame(
        {
            "customer_id": raw["sample"].astype(str),
            "ordered_at": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["dollars"].astype(float),
            "cents": raw["dollars"].map(lambda v: int(Decimal(v) * 100)),
        }
    )


def _rft(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return df["x"].to_numpy(float), df["t_x"].to_numpy(float), df["T"].to_numpy(float)


def test_summary_reproduces_the_published_cdnow_summary(transactions: pd.DataFrame, cdnow: pd.DataFrame) -> None:
    tx = ibis.memtable(transactions[["customer_id", "ordered_at", "amount"]])
    ours = ibis.duckdb.connect().execute(summary(tx, date(1997, 9, 30), holdout_end=date(1998, 6, 30)))
    ours["ID"] = ours.customer_id.astype(int)
    ours = ours.sort_values("ID").reset_index(drop=True)
    assert list(ours.ID) == list(cdnow.ID)
    assert (ours.x == cdnow.x).all()
    assert ours.x.sum() == 2457 and (ours.x > 0).sum() == 946
    assert (ours.t_x.round(2) == cdnow.t_x).all()
    assert (ours["T"].round(2) == cdnow["T"]).all()
    assert ours["T"].round(2).min() == 27.00 and ours["T"].round(2).max() == 38.86
    # z̄ is an average of cents: round it half-up like the published file, from the exact repeat total
    repeat_cents = (ours.monetary * ours.x * 100).round().astype(int)
    zbar = [
        float((Decimal(int(c)) / Decimal(int(x)) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)) if x else 0.0
        for c, x in zip(repeat_cents, ours.x, strict=True)
    ]
    assert zbar == list(cdnow.zbar)
    # the repeat total itself, independently from the cents column
    t = transactions.assign(day=transactions.ordered_at.dt.normalize())
    daily = t.groupby(["customer_id", "day"], as_index=False).cents.sum()
    daily = daily[daily.day <= "1997-09-30"]
    first = daily.groupby("customer_id").day.transform("min")
    rep = daily[daily.day > first].groupby("customer_id").cents.sum()
    mine = pd.Series(repeat_cents.values, index=ours.customer_id.values)
    assert (mine[rep.index] == rep).all()
    # holdout: repeat days after calibration, up to 1998-06-30
    hold = t[(t.day > "1997-09-30") & (t.day <= "1998-06-30")].groupby("customer_id").day.nunique()
    assert (pd.Series(ours.holdout_x.values, index=ours.customer_id.values).reindex(hold.index) == hold).all()
    assert ours.holdout_x.sum() == hold.sum()


def test_bgnbd_matches_the_published_estimates_and_point_checks(cdnow: pd.DataFrame) -> None:
    f = bgnbd.fit(*_rft(cdnow))
    p = f.params
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(f.log_likelihood, 1) == -9582.4
    assert abs(f.log_likelihood - (-9582.4256)) < 5e-5  # the full-precision MLE in btyd.md
    assert round(float(bgnbd.conditional_expected_purchases(f, 39, 2, 30.43, 38.86)), 3) == 1.226
    assert round(float(bgnbd.p_alive(f, 2, 30.43, 38.86)), 4) == 0.7266
    assert list(np.round(bgnbd.expected_purchases(f, [1, 3, 32, 78]), 4)) == [0.0532, 0.1506, 1.0437, 1.8580]
    rounded = bgnbd.Fit(**{**f.as_dict(), "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}})
    assert list(np.round(bgnbd.expected_purchases(rounded, [1, 3, 32, 78]), 4)) == [0.0533, 0.1509, 1.0452, 1.8605]
    assert all(v > 0 for v in f.se.values())


def test_pareto_nbd_matches_the_published_estimates(cdnow: pd.DataFrame) -> None:
    f = pareto_nbd.fit(*_rft(cdnow))
    p = f.params
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["s"], 3)) == (0.553, 10.578, 0.606)
    # β is flat in the likelihood (SE ≈ 6): the paper prints 11.669; our maximum is 11.6679 and its likelihood is
    # higher than at the printed estimates — the printed value is where the paper's optimiser stopped.
    assert abs(p["beta"] - 11.669) < 0.0015
    assert round(f.log_likelihood, 1) == -9595.0
    published = np.array([0.553, 10.578, 0.606, 11.669])
    assert f.log_likelihood >= pareto_nbd.loglik(published, compress(*_rft(cdnow)))[0]


def test_gamma_gamma_matches_the_published_estimates(cdnow: pd.DataFrame) -> None:
    f = gamma_gamma.fit(cdnow.x, cdnow.zbar)
    p = f.params
    assert (round(p["p"], 2), round(p["q"], 2)) == (6.25, 3.74)
    assert abs(p["gamma"] - 15.44) < 0.01  # printed 15.44; the maximum is 15.4477 (higher likelihood, below)
    assert round(f.log_likelihood, 1) == -4055.9
    d = gamma_gamma._data(cdnow.x, cdnow.zbar)
    assert f.log_likelihood >= gamma_gamma.loglik(np.array([6.25, 3.74, 15.44]), d)[0]
    # no repeat purchase → the population mean pγ/(q−1) ≈ 35.2
    assert round(gamma_gamma.population_mean_spend(f), 1) == 35.2
    assert float(gamma_gamma.conditional_expected_spend(f, 0, 0)) == pytest.approx(35.17, abs=0.01)


def test_gamma_gamma_without_heterogeneity_stops_at_the_q_bound() -> None:
    """Mean spends vary less across customers than their own transactions explain (as in the demo brand): the
    likelihood rises for ever along q, γ → ∞ (one ν for all); the fit converges on the bound Q_MAX."""
    rng = np.random.default_rng(7)
    x = rng.integers(1, 6, 4_000).astype(float)
    zbar = rng.gamma(1.7 * x, 280.0 / x)  # mean of x Gamma(1.7, ν = 1/280) transactions: Gamma(px, νx)
    zbar = 476.0 + (zbar - 476.0) / np.sqrt(x)  # variance ∝ 1/x², below the model's a/x + b for any b ≥ 0
    f = gamma_gamma.fit(x, zbar)
    assert f.converged and f.extra == {"at_bound:q": 1.0}
    assert f.params["q"] == pytest.approx(gamma_gamma.Q_MAX)

    # the limit model: z̄ ~ Gamma(px, νx) with one ν; its MLE of p and of the mean spend p/ν, by scipy directly
    def neg(p: float) -> float:
        nu_hat = p * x.sum() / (x * zbar).sum()  # ∂/∂ν = 0 for a given p
        px = p * x
        return -float(np.sum(px * np.log(nu_hat * x) + (px - 1) * np.log(zbar) - nu_hat * x * zbar - gammaln(px)))

    p_lim = minimize_scalar(neg, bounds=(0.01, 100), method="bounded", options={"xatol": 1e-10}).x
    assert f.params["p"] == pytest.approx(p_lim, rel=2e-3)
    mean_lim = (x * zbar).sum() / x.sum()
    spend = gamma_gamma.conditional_expected_spend(f, x, zbar)
    assert np.max(np.abs(spend / mean_lim - 1)) < 2e-3  # everyone ≈ the one population mean


@pytest.mark.parametrize(
    ("model", "theta"),
    [
        (bgnbd, [0.3, 4.0, 0.8, 2.5]),
        (mbgnbd, [0.5, 6.0, 0.9, 1.6]),
        (pareto_nbd, [0.5, 10.0, 0.6, 12.0]),
        (pareto_nbd, [0.5, 12.0, 0.6, 10.0]),
        (pareto_nbd, [2.0, 0.5, 0.3, 30.0]),
    ],
)
def test_gradients_are_exact(cdnow: pd.DataFrame, model: object, theta: list[float]) -> None:
    d = compress(*_rft(cdnow))
    th = np.array(theta)
    _, grad = model.loglik(th, d)  # type: ignore[attr-defined]
    for j in range(4):
        h = 1e-6 * th[j]
        e = np.zeros(4)
        e[j] = h
        num = (model.loglik(th + e, d)[0] - model.loglik(th - e, d)[0]) / (2 * h)  # type: ignore[attr-defined]
        assert grad[j] == pytest.approx(num, rel=1e-5, abs=1e-4)


def test_gamma_gamma_hessian_is_exact(cdnow: pd.DataFrame) -> None:
    d = gamma_gamma._data(cdnow.x, cdnow.zbar)
    th = np.array([5.0, 3.0, 12.0])
    _, _, h = gamma_gamma.loglik_hessian(th, d)
    for j in range(3):
        e = np.zeros(3)
        e[j] = 1e-6 * th[j]
        col = (gamma_gamma.loglik(th + e, d)[1] - gamma_gamma.loglik(th - e, d)[1]) / (2 * e[j])
        assert h[:, j] == pytest.approx(col, rel=1e-6)


def _pareto_ll_scipy(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
    """Fader & Hardie's MATLAB-note form with scipy's hyp2f1, written independently of pareto_nbd.py."""
    r, alpha, s, beta = theta
    maxab, absab = max(alpha, beta), abs(alpha - beta)
    param2 = s + 1 if alpha >= beta else r + x
    k = r + s + x
    f1 = hyp2f1(k, param2, k + 1, absab / (maxab + t_x))
    f2 = hyp2f1(k, param2, k + 1, absab / (maxab + T))
    a0 = f1 / (maxab + t_x) ** k - f2 / (maxab + T) ** k
    lead = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return float(np.sum(lead + np.log(1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / k * a0)))


@pytest.mark.parametrize(
    "theta",
    [
        [0.553, 10.578, 0.606, 11.669],
        [0.8, 20.0, 0.3, 5.0],
        [0.4, 3.0, 1.5, 40.0],
        [2.0, 0.3, 0.1, 45.0],
        [0.1, 49.0, 8.0, 0.2],
    ],
)
def test_pareto_nbd_likelihood_equals_the_hyp2f1_form(cdnow: pd.DataFrame, theta: list[float]) -> None:
    x, t_x, T = _rft(cdnow)
    ours, _ = pareto_nbd.loglik(np.array(theta), compress(x, t_x, T))
    assert ours == pytest.approx(_pareto_ll_scipy(np.array(theta), x, t_x, T), rel=1e-12)


def test_predictions_match_lifetimes_at_the_same_parameters(cdnow: pd.DataFrame) -> None:
    lt = pytest.importorskip("lifetimes")
    warnings.filterwarnings("ignore")
    x, t_x, T = _rft(cdnow)
    peers = {"bgnbd": lt.BetaGeoFitter, "mbgnbd": lt.ModifiedBetaGeoFitter, "pareto_nbd": lt.ParetoNBDFitter}
    for model in (bgnbd, mbgnbd, pareto_nbd):
        f = model.fit(x, t_x, T)
        peer = peers[model.NAME]()
        peer.params_ = pd.Series(f.params)
        np.testing.assert_allclose(
            model.conditional_expected_purchases(f, 10, x, t_x, T),
            peer.conditional_expected_number_of_purchases_up_to_time(10, cdnow.x, cdnow.t_x, cdnow["T"]),
            rtol=1e-9,
        )
        np.testing.assert_allclose(
            model.p_alive(f, x, t_x, T), peer.conditional_probability_alive(cdnow.x, cdnow.t_x, cdnow["T"]), rtol=1e-9
        )
        np.testing.assert_allclose(
            model.expected_purchases(f, [1.0, 10.0, 50.0]),
            peer.expected_number_of_purchases_up_to_time(np.array([1.0, 10.0, 50.0])),
            rtol=1e-9,
        )
    g = gamma_gamma.fit(cdnow.x, cdnow.zbar)
    gg = lt.GammaGammaFitter()
    gg.params_ = pd.Series({"p": g.params["p"], "q": g.params["q"], "v": g.params["gamma"]})
    spend = gamma_gamma.conditional_expected_spend(g, cdnow.x, cdnow.zbar)
    np.testing.assert_allclose(spend, gg.conditional_expected_average_profit(cdnow.x, cdnow.zbar), rtol=1e-9)
    f = bgnbd.fit(x, t_x, T)
    peer = lt.BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow["T"])
    peer.params_ = pd.Series(f.params)
    ours = value.lifetime_value(
        f, g, x, t_x, T, cdnow.zbar, months=12, annual_discount_rate=1.01**12 - 1, days_per_month=4.345 * 7
    )
    theirs = gg.customer_lifetime_value(
        peer, cdnow.x, cdnow.t_x, cdnow["T"], cdnow.zbar, time=12, discount_rate=0.01, freq="W"
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_estimates_agree_with_lifetimes_fits(cdnow: pd.DataFrame) -> None:
    lt = pytest.importorskip("lifetimes")
    warnings.filterwarnings("ignore")
    x, t_x, T = _rft(cdnow)
    for model, peer in ((bgnbd, lt.BetaGeoFitter()), (mbgnbd, lt.ModifiedBetaGeoFitter())):
        ours = model.fit(x, t_x, T).params
        peer.fit(cdnow.x, cdnow.t_x, cdnow["T"])
        assert [round(v, 3) for v in ours.values()] == [round(float(v), 3) for v in peer.params_.values]
    ours_pn = pareto_nbd.fit(x, t_x, T)
    peer = lt.ParetoNBDFitter().fit(cdnow.x, cdnow.t_x, cdnow["T"])
    # lifetimes' Pareto/NBD stops short of the maximum by an amount that varies between runs and hosts (α 10.5753
    # to 10.5778, β 11.6657 to 11.6689 seen; SEs α 0.84, β 6.2): the same maximum means each parameter within 2% of
    # its standard error (at least 0.002), and lifetimes' point within 0.001 of our log-likelihood, never above it
    for k, se in ours_pn.se.items():
        assert abs(ours_pn.params[k] - float(peer.params_[k])) < max(0.002, 0.02 * se), k
    peer_ll = pareto_nbd.loglik(peer.params_.to_numpy(float), compress(x, t_x, T))[0]
    assert ours_pn.log_likelihood - 0.001 < peer_ll <= ours_pn.log_likelihood
    g = gamma_gamma.fit(cdnow.x, cdnow.zbar).params
    rep = cdnow[cdnow.x > 0]
    gp = lt.GammaGammaFitter().fit(rep.x, rep.zbar).params_
    assert [round(g[k], 3) for k in ("p", "q", "gamma")] == [round(float(gp[k]), 3) for k in ("p", "q", "v")]


@pytest.mark.parametrize("params", [(0.25, 4.4, 0.8, 2.4), (1.5, 2.0, 2.0, 6.0), (0.6, 30.0, 0.3, 1.2)])
def test_bgnbd_recovers_simulated_parameters_from_default_starts(params: tuple[float, ...]) -> None:
    T = np.random.default_rng(1).uniform(27, 39, 40_000)
    x, t_x, TT = simulate.bgnbd_customers(40_000, *params, T=T, seed=3)
    f = bgnbd.fit(x, t_x, TT)
    for (name, est), true in zip(f.params.items(), params, strict=True):
        assert abs(est - true) < 4 * f.se[name] + 0.02 * true, (name, est, true, f.se[name])


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.6, 11.7), (1.0, 2.0, 0.5, 40.0), (0.5, 40.0, 1.2, 3.0)])
def test_pareto_nbd_recovers_simulated_parameters_from_default_starts(params: tuple[float, ...]) -> None:
    T = np.random.default_rng(2).uniform(27, 39, 20_000)
    x, t_x, TT = simulate.pareto_nbd_customers(20_000, *params, T=T, seed=5)
    f = pareto_nbd.fit(x, t_x, TT)
    for (name, est), true in zip(f.params.items(), params, strict=True):
        assert abs(est - true) < 4 * f.se[name] + 0.02 * true, (name, est, true, f.se[name])


def test_bad_input_is_named() -> None:
    with pytest.raises(SiyuError) as e:
        bgnbd.fit([1, 0], [5.0, 0.0], [4.0, 3.0])
    assert e.value.field == "t_x"
    with pytest.raises(SiyuError) as e:
        bgnbd.fit([1.5], [1.0], [3.0])
    assert e.value.field == "x"
    with pytest.raises(SiyuError) as e:
        pareto_nbd.fit([], [], [])
    assert e.value.field == "x"
    with pytest.raises(SiyuError) as e:
        gamma_gamma.fit([1, 2], [0.0, 3.0])
    assert e.value.field == "zbar"
    with pytest.raises(SiyuError) as e:
        value.monthly_rate(-0.1)
    assert e.value.field == "discount_rate"


def test_validation_groups_and_tracking(cdnow: pd.DataFrame) -> None:
    x, t_x, T = _rft(cdnow)
    f = bgnbd.fit(x, t_x, T)
    holdout = np.random.default_rng(0).poisson(1.0, len(x))
    rows = validation.by_frequency(f, x, t_x, T, holdout, 39.0)
    assert [r.x for r in rows] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(r.customers for r in rows) == len(x)
    seven = x >= 7
    assert rows[-1].actual == pytest.approx(holdout[seven].mean())
    assert rows[0].predicted == pytest.approx(bgnbd.conditional_expected_purchases(f, 39.0, 0, 0, T[x == 0]).mean())
    birth = 38.857 - T  # weeks from 1997-01-01
    track = validation.tracking(f, birth, 78)
    week = 50
    direct = sum(float(bgnbd.expected_purchases(f, week - s)) for s in birth if week > s)
    assert track[week - 1] == pytest.approx(direct, rel=1e-9)
    assert np.all(np.diff(track) > 0)


# Fader & Hardie (2007), "How to Project Customer Retention", J. Interactive Marketing 21(1): survivors of 1,000
# customers over years 0..7 and the published estimates (Table 1 data, §4 estimates).
SBG_COHORTS = {
    "regular": ([1000, 631, 468, 382, 326, 289, 262, 241], 0.704, 1.182, -1680.3),
    "high_end": ([1000, 869, 743, 653, 593, 551, 517, 491], 0.668, 3.806, -1611.2),
}


@pytest.mark.parametrize("cohort", sorted(SBG_COHORTS))
def test_sbg_matches_the_published_estimates(cohort: str) -> None:
    survivors, alpha, beta, ll = SBG_COHORTS[cohort]
    f = sbg.fit(survivors)
    assert (round(f.params["alpha"], 3), round(f.params["beta"], 3)) == (alpha, beta)
    assert round(f.log_likelihood, 1) == ll
    s = sbg.survival(f, 7)
    r = sbg.retention(f, 7)
    assert s[0] == 1.0 and np.allclose(s[1:] / s[:-1], r)  # retention is the ratio of survival
    assert np.all(np.diff(r) > 0)  # rises with tenure
    # independent: survival by simulating the model
    rng = np.random.default_rng(0)
    theta = rng.beta(f.params["alpha"], f.params["beta"], 400_000)
    life = rng.geometric(theta)  # periods until churn, ≥ 1
    assert [round(float((life > t).mean()), 2) for t in range(8)] == [round(float(v), 2) for v in s]


def test_sbg_gradient_and_bad_input() -> None:
    n = np.array([1000.0, 631, 468, 382, 326, 289, 262, 241])
    th = np.array([0.7, 1.2])
    _, grad = sbg.loglik(th, n)
    num = [(sbg.loglik(th + e * 1e-6, n)[0] - sbg.loglik(th - e * 1e-6, n)[0]) / 2e-6 for e in np.eye(2)]
    assert grad == pytest.approx(num, rel=1e-6)
    with pytest.raises(SiyuError) as e:
        sbg.fit([100, 120])
    assert e.value.field == "survivors"


def test_sbg_derl_equals_the_closed_form() -> None:
    f = sbg.fit(SBG_COHORTS["regular"][0])
    a, b = f.params["alpha"], f.params["beta"]
    for n, d in ((0, 0.1), (3, 0.1), (5, 0.25)):
        closed = (b + n) / (a + b + n) * hyp2f1(1, b + n + 1, a + b + n + 1, 1 / (1 + d))  # Fader & Hardie (2010)
        assert sbg.discounted_expected_residual_lifetime(f, d, n) == pytest.approx(closed, rel=1e-6)
