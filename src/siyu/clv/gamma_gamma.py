"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves"; Colombo & Jiang 1999).

A customer's transaction values are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, independent of the
purchase process. Fitted on customers with x ≥ 1 repeat transactions and their mean repeat spend z̄:
    f(z̄ | x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q x^(px) z̄^(px−1) / (γ + x z̄)^(px+q)
The conditional expected spend is E[M | x, z̄] = (γ + x z̄) p / (px + q − 1), which for x = 0 is the
population mean pγ/(q−1).

When customers' mean spends differ no more than their single transactions would explain, the likelihood keeps
rising as q, γ → ∞ with γ/q fixed (ν the same for everyone) and never peaks. q is bounded at ``Q_MAX`` (ν's
coefficient of variation 1/√q = 1 %): there the weight of a customer's own mean, px/(px+q−1), is below 0.1 %
for any realistic x, so predictions equal the limit's, and the fit reports ``at_bound:q``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln, zeta

from siyu.clv.mle import Fit, maximise, require_fit
from siyu.errors import SiyuError

NAME = "gamma_gamma"
PARAMS = ("p", "q", "gamma")
START = np.array([1.0, 1.0, 1.0])
Q_MAX = 1e4
UPPER = np.array([np.inf, Q_MAX, np.inf])
Array = npt.NDArray[np.float64]


def _trigamma(v: npt.ArrayLike) -> Array:
    """ψ₁(v) = ζ(2, v) (``scipy.special.polygamma(1, ·)`` computes the same through slower Python code)."""
    return np.asarray(zeta(2.0, v))


@dataclass(frozen=True)
class Spend:
    """Repeat customers' frequency x and mean repeat spend z̄; the Γ-function terms depend on x only, so they are
    evaluated once per distinct x (``xs`` with ``counts``) and only ln(γ + x z̄) is per customer."""

    x: Array
    xz: Array
    xs: Array
    counts: Array
    sum_x_logs: float  # Σ x (ln z̄ + ln x)
    sum_log_z: float  # Σ ln z̄


def _data(x: npt.ArrayLike, zbar: npt.ArrayLike) -> Spend:
    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    za = np.asarray(zbar, dtype=np.float64).reshape(-1)
    if len(xa) != len(za):
        raise SiyuError("x and zbar must have the same length", "zbar")
    keep = xa > 0
    xa, za = xa[keep], za[keep]
    if len(xa) == 0:
        raise SiyuError("no repeat customers: the spend model needs customers with x ≥ 1", "x")
    if not np.all(np.isfinite(za)) or np.any(za <= 0):
        raise SiyuError(
            "zbar (mean repeat spend) must be > 0 for every repeat customer; drop zero-value orders", "zbar"
        )
    xs, counts = np.unique(xa, return_counts=True)
    log_z = np.log(za)
    return Spend(
        x=xa,
        xz=xa * za,
        xs=xs,
        counts=counts.astype(np.float64),
        sum_x_logs=float(np.sum(xa * (log_z + np.log(xa)))),
        sum_log_z=float(np.sum(log_z)),
    )


def loglik(theta: Array, d: Spend) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in (p, q, γ)."""
    ll, grad, _ = _terms(theta, d, hessian=False)
    return ll, grad


def loglik_hessian(theta: Array, d: Spend) -> tuple[float, Array, Array]:
    """Log-likelihood, gradient and analytic Hessian (trigamma functions) in (p, q, γ)."""
    return _terms(theta, d, hessian=True)


def _terms(theta: Array, d: Spend, hessian: bool) -> tuple[float, Array, Array]:
    p, q, g = theta
    n = float(len(d.x))
    pxs = p * d.xs
    c = d.counts
    lgxz = np.log(g + d.xz)
    w = p * d.x + q  # px + q per customer
    ll = c @ (gammaln(pxs + q) - gammaln(pxs)) + p * d.sum_x_logs - d.sum_log_z - w @ lgxz
    ll += n * (q * np.log(g) - gammaln(q))
    dpq = digamma(pxs + q)
    g_p = c @ (d.xs * (dpq - digamma(pxs))) + d.sum_x_logs - d.x @ lgxz
    g_q = c @ dpq - lgxz.sum() + n * (np.log(g) - digamma(q))
    inv = 1.0 / (g + d.xz)
    g_g = n * q / g - w @ inv
    grad = np.array([g_p, g_q, g_g])
    if not hessian:
        return float(ll), grad, np.empty((0, 0))
    t_pq = _trigamma(pxs + q)
    h_pp = c @ (d.xs * d.xs * (t_pq - _trigamma(pxs)))
    h_pq = c @ (d.xs * t_pq)
    h_pg = -(d.x @ inv)
    h_qq = c @ t_pq - n * _trigamma(q)
    h_qg = n / g - inv.sum()
    h_gg = -n * q / g**2 + w @ (inv * inv)
    h = np.array([[h_pp, h_pq, h_pg], [h_pq, h_qq, h_qg], [h_pg, h_qg, h_gg]])
    return float(ll), grad, h


def fit(x: npt.ArrayLike, zbar: npt.ArrayLike) -> Fit:
    """Maximum-likelihood Gamma-Gamma fit on repeat customers (rows with x = 0 are left out)."""
    d = _data(x, zbar)
    return maximise(NAME, PARAMS, loglik, d, START, len(d.x), hess=loglik_hessian, upper=UPPER)


def conditional_expected_spend(fit_: Fit, x: npt.ArrayLike, zbar: npt.ArrayLike) -> Array:
    """E[M | x, z̄]: expected value of a customer's future transaction."""
    p, q, g = require_fit(fit_, NAME)
    xa = np.asarray(x, dtype=np.float64)
    za = np.where(xa > 0, np.asarray(zbar, dtype=np.float64), 0.0)
    return np.asarray((g + xa * za) * p / (p * xa + q - 1))


def population_mean_spend(fit_: Fit) -> float:
    """E[M] = pγ/(q − 1), the expected spend of a customer with no repeat purchase yet."""
    p, q, g = require_fit(fit_, NAME)
    return float(p * g / (q - 1))
