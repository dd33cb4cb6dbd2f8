"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), likelihood as in Fader & Hardie's implementation note.

While alive a customer buys at rate λ ~ Gamma(r, α); lifetimes are exponential with rate μ ~ Gamma(s, β).
    L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^−(r+x) (β+T)^−s + s/(r+s+x) · A₀ ]
    A₀ = F(z₁)/(m+t_x)^(r+s+x) − F(z₂)/(m+T)^(r+s+x),  F(z) = 2F1(r+s+x, b; r+s+x+1; z)
with m = max(α, β), zⱼ = |α−β|/(m+tⱼ) ∈ [0, 1), and b = s+1 when α ≥ β, b = r+x when α < β. Choosing the form by
the larger of α, β keeps z below 1 for every parameter value; this is where the common open-source
implementation breaks (it evaluates one form everywhere and overflows, hence its "add a penalizer" advice).
Everything is in log space: each A₀ term is exp(ln F − κ ln(m+t)) scaled by the largest exponent, and the
gradient is exact (the series for 2F1 differentiated term by term, ``siyu.clv.hypergeometric``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from siyu.clv.data import RFT, compress
from siyu.clv.hypergeometric import hyp2f1_a1
from siyu.clv.mle import Fit, maximise, require_fit

NAME = "pareto_nbd"
PARAMS = ("r", "alpha", "s", "beta")
START = np.array([1.0, 1.0, 1.0, 1.0])
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Terms:
    P: Array  # ln[(α+T)^−(r+x) (β+T)^−s]
    G1: Array  # ln of the A₀ term at t_x
    G2: Array  # ln of the A₀ term at T
    dP: Array  # 4 × rows
    dG1: Array
    dG2: Array


def _log_a0_terms(r: float, alpha: float, s: float, beta: float, x: Array, t: Array) -> tuple[Array, Array]:
    """ln[F(z)/(m+t)^κ] and its gradient in (r, α, s, β) for each (x, t) pair."""
    kappa = r + s + x
    if alpha >= beta:
        m, diff, b = alpha, alpha - beta, np.full_like(x, s + 1.0)
    else:
        m, diff, b = beta, beta - alpha, r + x
    mt = m + t
    z = diff / mt
    f, fa, fb, fz = hyp2f1_a1(kappa, b, z)
    log_mt = np.log(mt)
    g = np.log(f) - kappa * log_mt
    d_kappa = fa / f - log_mt
    d_b = fb / f
    d_z = fz / f
    d_m = d_z * (1 - z) / mt - kappa / mt  # through m in both z and (m+t)
    d_other = -d_z / mt  # the smaller of α, β only enters through z
    if alpha >= beta:
        grad = np.stack([d_kappa, d_m, d_kappa + d_b, d_other])
    else:
        grad = np.stack([d_kappa + d_b, d_other, d_kappa, d_m])
    return g, grad


def _terms(theta: Array, d: RFT) -> _Terms:
    r, alpha, s, beta = theta
    rx = r + d.x
    la, lb = np.log(alpha + d.T), np.log(beta + d.T)
    P = -rx * la - s * lb
    dP = np.stack([-la, -rx / (alpha + d.T), -lb, -s / (beta + d.T)])
    rows = len(d.x)
    # one series evaluation for both ends (t_x and T) of every row
    G, dG = _log_a0_terms(r, alpha, s, beta, np.concatenate([d.x, d.x]), np.concatenate([d.t_x, d.T]))
    return _Terms(P, G[:rows], G[rows:], dP, dG[:, :rows], dG[:, rows:])


def loglik(theta: Array, d: RFT) -> tuple[float, Array]:
    """Total log-likelihood and its exact gradient in (r, α, s, β)."""
    r, alpha, s, beta = theta
    k = _terms(theta, d)
    kappa = r + s + d.x
    c = s / kappa
    M = np.maximum(k.P, k.G1)
    eP, e1, e2 = np.exp(k.P - M), np.exp(k.G1 - M), np.exp(k.G2 - M)
    a0 = np.maximum(e1 - e2, 0.0)
    S = eP + c * a0
    wt = d.weight
    xs, xi = d.xs, d.xi
    n = wt.sum()
    ll = float(wt @ (gammaln(r + xs)[xi] + M + np.log(S)) + n * (-gammaln(r) + r * np.log(alpha) + s * np.log(beta)))
    dc = np.stack([-s / kappa**2, np.zeros_like(kappa), 1 / kappa - s / kappa**2, np.zeros_like(kappa)])
    num = eP * k.dP + dc * a0 + c * (e1 * k.dG1 - e2 * k.dG2)
    grad = (num / S) @ wt
    grad[0] += wt @ digamma(r + xs)[xi] + n * (np.log(alpha) - digamma(r))
    grad[1] += n * r / alpha
    grad[2] += n * np.log(beta)
    grad[3] += n * s / beta
    return ll, grad


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> Fit:
    """Maximum-likelihood Pareto/NBD fit."""
    d = compress(x, t_x, T, weight)
    return maximise(NAME, PARAMS, loglik, d, START, d.customers)


def p_alive(fit_: Fit, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Array:
    """P(still alive | x, t_x, T) = (α+T)^−(r+x)(β+T)^−s / [ … + s/(r+s+x) A₀ ], in log space."""
    theta = require_fit(fit_, NAME)
    r, _, s, _ = theta
    xa, ta, Ta = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, t_x, T))
    xa, ta, Ta = np.broadcast_arrays(xa, ta, Ta)
    d = RFT(xa, ta, Ta, np.ones_like(xa), xa, np.arange(len(xa)), len(xa))
    k = _terms(theta, d)
    a0_rel = np.maximum(np.exp(k.G1 - k.P) - np.exp(k.G2 - k.P), 0.0)
    return np.asarray(1.0 / (1.0 + s / (r + s + xa) * a0_rel))


def conditional_expected_purchases(
    fit_: Fit, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """E[Y(t) | x, t_x, T] = P(alive) · (r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)]."""
    r, alpha, s, beta = require_fit(fit_, NAME)
    tt, xa, Ta = (np.asarray(v, dtype=np.float64) for v in (t, x, T))
    if abs(s - 1) < 1e-9:
        rate = (r + xa) * (beta + Ta) / (alpha + Ta) * np.log((beta + Ta + tt) / (beta + Ta))
    else:
        rate = (r + xa) * (beta + Ta) / ((alpha + Ta) * (s - 1)) * (1 - ((beta + Ta) / (beta + Ta + tt)) ** (s - 1))
    return np.asarray(rate * p_alive(fit_, x, t_x, T))


def expected_purchases(fit_: Fit, t: npt.ArrayLike) -> Array:
    """E[X(t)] for a new customer: rβ/(α(s−1)) [1 − (β/(β+t))^(s−1)]."""
    r, alpha, s, beta = require_fit(fit_, NAME)
    tt = np.asarray(t, dtype=np.float64)
    if abs(s - 1) < 1e-9:
        return np.asarray(r * beta / alpha * np.log((beta + tt) / beta))
    return np.asarray(r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + tt)) ** (s - 1)))
