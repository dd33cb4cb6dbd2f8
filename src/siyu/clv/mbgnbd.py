"""Modified BG/NBD (Batislam, Denizel & Filiztekin 2007): like BG/NBD, but a customer may also drop out right
after the first purchase, so customers without repeat purchases can be inactive too.

    L = B(a, b+x+1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x)) + B(a+1, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
for every x (t_x = 0 when x = 0). In log space: ``ln L = ln(first) + ln(1 + e^D)`` with
``D = ln(a/(b+x)) + (r+x) ln((α+T)/(α+t_x))``; analytic gradient.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import expit, hyp2f1

from siyu.clv.bgnbd import bg_family_loglik
from siyu.clv.data import RFT, compress
from siyu.clv.mle import Fit, maximise, require_fit

NAME = "mbgnbd"
PARAMS = ("r", "alpha", "a", "b")
START = np.array([1.0, 1.0, 1.0, 1.0])
Array = npt.NDArray[np.float64]


def loglik(theta: Array, d: RFT) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in (r, α, a, b) (``bgnbd.bg_family_loglik`` with shift 1)."""
    return bg_family_loglik(theta, d, shift=1)


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> Fit:
    """Maximum-likelihood MBG/NBD fit."""
    d = compress(x, t_x, T, weight)
    return maximise(NAME, PARAMS, loglik, d, START, d.customers)


def expected_purchases(fit_: Fit, t: npt.ArrayLike) -> Array:
    """E[X(t)] for a new customer."""
    r, alpha, a, b = require_fit(fit_, NAME)
    tt = np.asarray(t, dtype=np.float64)
    return np.asarray(b / (a - 1) * (1 - (alpha / (alpha + tt)) ** r * hyp2f1(r, b + 1, a + b, tt / (alpha + tt))))


def p_alive(fit_: Fit, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Array:
    """P(still active | x, t_x, T)."""
    r, alpha, a, b = require_fit(fit_, NAME)
    xa, ta, Ta = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    log_odds = np.log(a / (b + xa)) + (r + xa) * (np.log(alpha + Ta) - np.log(alpha + ta))
    return np.asarray(expit(-log_odds))


def conditional_expected_purchases(
    fit_: Fit, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """E[Y(t) | x, t_x, T] (Batislam et al. 2007)."""
    return np.asarray(purchases_if_alive(fit_, t, x, T) * p_alive(fit_, x, t_x, T))


def purchases_if_alive(fit_: Fit, t: npt.ArrayLike, x: npt.ArrayLike, T: npt.ArrayLike) -> Array:
    """E[Y(t) | x, T, alive at T]; times P(alive) it is the conditional expectation."""
    r, alpha, a, b = require_fit(fit_, NAME)
    tt, xa, Ta = (np.asarray(v, dtype=np.float64) for v in (t, x, T))
    hyp = hyp2f1(r + xa, b + xa + 1, a + b + xa, tt / (alpha + Ta + tt))
    head = (a + b + xa) / (a - 1)
    tail = 1 - hyp * ((alpha + Ta) / (alpha + tt + Ta)) ** (r + xa)
    return np.asarray(head * tail)
