"""Shifted-beta-geometric retention for subscription-style brands (Fader & Hardie 2007, "How to Project Customer
Retention", Journal of Interactive Marketing 21(1)).

Each period an active customer renews with probability 1 − θ, θ ~ Beta(α, β) across customers. From a cohort's
survivor counts n₀ ≥ n₁ ≥ … ≥ n_k (customers still active at the start of each period):
    P(churn in period t) = B(α+1, β+t−1)/B(α, β),   S(t) = B(α, β+t)/B(α, β)
    LL = Σₜ (nₜ₋₁ − nₜ) ln P(t) + n_k ln S(k)
Both recur without Beta functions: P(1) = α/(α+β), P(t) = P(t−1)(β+t−2)/(α+β+t−1), S(t) = S(t−1) − P(t).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma

from siyu.clv.mle import Fit, maximise, require_fit
from siyu.errors import SiyuError

NAME = "sbg"
PARAMS = ("alpha", "beta")
START = np.array([1.0, 1.0])
Array = npt.NDArray[np.float64]


def _counts(survivors: npt.ArrayLike) -> Array:
    n = np.asarray(survivors, dtype=np.float64).reshape(-1)
    if len(n) < 2:
        raise SiyuError("survivors needs the cohort size and at least one later count", "survivors")
    if np.any(n < 0) or np.any(np.diff(n) > 0) or n[0] <= 0:
        raise SiyuError(
            "survivors must start above 0 and never increase (customers active at each period)", "survivors"
        )
    return n


def loglik(theta: Array, n: Array) -> tuple[float, Array]:
    """Log-likelihood and its analytic gradient in (α, β)."""
    a, b = theta
    k = len(n) - 1
    t = np.arange(1, k + 1, dtype=np.float64)
    lost = n[:-1] - n[1:]
    # ln P(t) = ln B(α+1, β+t−1) − ln B(α, β); ln S(k) = ln B(α, β+k) − ln B(α, β)
    log_p = betaln(a + 1, b + t - 1) - betaln(a, b)
    log_s = betaln(a, b + k) - betaln(a, b)
    ll = float(lost @ log_p + n[-1] * log_s)
    d_ab = digamma(a + b)
    dp_a = digamma(a + 1) - digamma(a + b + t) - digamma(a) + d_ab
    dp_b = digamma(b + t - 1) - digamma(a + b + t) - digamma(b) + d_ab
    ds_a = d_ab - digamma(a + b + k)
    ds_b = digamma(b + k) - digamma(a + b + k) - digamma(b) + d_ab
    grad = np.array([lost @ dp_a + n[-1] * ds_a, lost @ dp_b + n[-1] * ds_b])
    return ll, grad


def fit(survivors: npt.ArrayLike) -> Fit:
    """Maximum-likelihood sBG fit to a cohort's survivor counts (n₀ = cohort size)."""
    n = _counts(survivors)
    return maximise(NAME, PARAMS, loglik, n, START, int(n[0]))


def survival(fit_: Fit, periods: int) -> Array:
    """S(t) for t = 0..periods: the share of the cohort still active."""
    a, b = require_fit(fit_, NAME)
    t = np.arange(0, periods + 1, dtype=np.float64)
    return np.asarray(np.exp(betaln(a, b + t) - betaln(a, b)))


def retention(fit_: Fit, periods: int) -> Array:
    """r(t) = S(t)/S(t−1) = (β+t−1)/(α+β+t−1) for t = 1..periods (rises with tenure: the churners leave first)."""
    a, b = require_fit(fit_, NAME)
    t = np.arange(1, periods + 1, dtype=np.float64)
    return np.asarray((b + t - 1) / (a + b + t - 1))


def discounted_expected_residual_lifetime(fit_: Fit, discount_rate: float, renewals: int = 0) -> float:
    """DERL of a customer who has made ``renewals`` renewals (Fader & Hardie 2010), summed to convergence."""
    a, b = require_fit(fit_, NAME)
    if not 0 <= discount_rate < 10:
        raise SiyuError("discount_rate is a per-period rate between 0 and 10", "discount_rate")
    n = renewals
    t = np.arange(0, 100_000, dtype=np.float64)
    # P(alive at n+1+t | alive at n) = B(α, β+n+1+t)/B(α, β+n), discounted by (1+d)^t
    terms = np.exp(betaln(a, b + n + 1 + t) - betaln(a, b + n) - t * np.log1p(discount_rate))
    return float(terms.sum())
