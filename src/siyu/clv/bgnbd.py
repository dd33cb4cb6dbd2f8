"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

While active, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each purchase they drop
out with probability p ~ Beta(a, b). Time is in the summary's unit (weeks on CDNOW).

Per-customer likelihood (their eq. 6), written in log space so nothing overflows:
    L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] B(a+1, b+x−1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
The second term over the first is ``exp(D)``, ``D = ln(a/(b+x−1)) + (r+x) ln((α+T)/(α+t_x))``, so
``ln L = ln(first) + ln(1 + e^D)`` (Hardie's fix for the #NUM! overflow of the textbook form). The gradient is
analytic (digamma functions); ``w = e^D/(1+e^D)`` is the posterior weight of "dropped out after the last purchase".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from siyu.clv.data import RFT, compress
from siyu.clv.mle import Fit, maximise, require_fit

NAME = "bgnbd"
PARAMS = ("r", "alpha", "a", "b")
START = np.array([1.0, 1.0, 1.0, 1.0])
Array = npt.NDArray[np.float64]


def loglik(theta: Array, d: RFT) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in (r, α, a, b)."""
    return bg_family_loglik(theta, d, shift=0)


def bg_family_loglik(theta: Array, d: RFT, shift: int) -> tuple[float, Array]:
    """BG/NBD (``shift`` 0) or MBG/NBD (``shift`` 1, drop-out possible at the first purchase too).

    ln L = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x+k) − ln B(a, b) − (r+x) ln(α+T) + ln(1 + e^D),
    D = ln(a/(b+x+k−1)) + (r+x) ln((α+T)/(α+t_x)), for x > 0 when k = 0 and for every x when k = 1.
    """
    r, alpha, a, b = theta
    xs = d.xs
    k = float(shift)
    live = d.x > 0 if shift == 0 else np.ones(len(d.x), dtype=bool)
    la_T = np.log(alpha + d.T)
    la_t = np.log(alpha + d.t_x)
    # x-only terms, once per distinct x
    g_x = gammaln(r + xs) + gammaln(b + xs + k) - gammaln(a + b + xs + k)
    dr_x = digamma(r + xs)
    db_x = digamma(b + xs + k) - digamma(a + b + xs + k)
    da_x = -digamma(a + b + xs + k)
    has_d = (xs > 0) | (shift == 1)
    bx1 = np.where(has_d, b + xs + k - 1, 1.0)
    lnab_x = np.where(has_d, np.log(a / bx1), -np.inf)
    xi = d.xi
    rx = r + d.x
    D = np.where(live, lnab_x[xi] + rx * (la_T - la_t), -np.inf)
    w = np.where(live, expit(D), 0.0)
    row = g_x[xi] - rx * la_T + np.logaddexp(0.0, D)
    wt = d.weight
    n = wt.sum()
    const = -gammaln(r) + r * np.log(alpha) - gammaln(b) + gammaln(a + b)
    ll = float(wt @ row + n * const)
    mix_log = (1 - w) * la_T + w * la_t
    g_r = wt @ (dr_x[xi] - mix_log) + n * (np.log(alpha) - digamma(r))
    g_alpha = n * r / alpha - wt @ (rx * ((1 - w) / (alpha + d.T) + w / (alpha + d.t_x)))
    g_a = wt @ (da_x[xi] + w / a) + n * digamma(a + b)
    g_b = wt @ (db_x[xi] - w / bx1[xi]) + n * (digamma(a + b) - digamma(b))
    return ll, np.array([g_r, g_alpha, g_a, g_b])


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> Fit:
    """Maximum-likelihood BG/NBD fit of repeat frequency x, recency t_x and age T."""
    d = compress(x, t_x, T, weight)
    return maximise(NAME, PARAMS, loglik, d, START, d.customers)


def expected_purchases(fit_: Fit, t: npt.ArrayLike) -> Array:
    """E[X(t)]: expected repeat purchases of a new customer in (0, t]."""
    r, alpha, a, b = require_fit(fit_, NAME)
    tt = np.asarray(t, dtype=np.float64)
    z = tt / (alpha + tt)
    return np.asarray((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + tt)) ** r * hyp2f1(r, b, a + b - 1, z)))


def p_alive(fit_: Fit, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Array:
    """P(still active | x, t_x, T)."""
    r, alpha, a, b = require_fit(fit_, NAME)
    xa, ta, Ta = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    safe = np.where(xa > 0, b + xa - 1, 1.0)
    log_odds = np.log(a / safe) + (r + xa) * (np.log(alpha + Ta) - np.log(alpha + ta))
    return np.asarray(np.where(xa > 0, expit(-log_odds), 1.0))


def conditional_expected_purchases(
    fit_: Fit, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t time units (FHL 2005 eq. 10)."""
    return np.asarray(purchases_if_alive(fit_, t, x, T) * p_alive(fit_, x, t_x, T))


def purchases_if_alive(fit_: Fit, t: npt.ArrayLike, x: npt.ArrayLike, T: npt.ArrayLike) -> Array:
    """E[Y(t) | x, T, alive at T]; times P(alive) it is the conditional expectation."""
    r, alpha, a, b = require_fit(fit_, NAME)
    tt, xa, Ta = (np.asarray(v, dtype=np.float64) for v in (t, x, T))
    z = tt / (alpha + Ta + tt)
    head = (a + b + xa - 1) / (a - 1)
    tail = 1 - ((alpha + Ta) / (alpha + Ta + tt)) ** (r + xa) * hyp2f1(r + xa, b + xa, a + b + xa - 1, z)
    return np.asarray(head * tail)
