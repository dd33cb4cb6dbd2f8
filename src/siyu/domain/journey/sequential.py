"""Experiment statistics that stay valid when looked at after every observation (always-valid inference).

mSPRT with a normal mixture (Johari, Pekelis & Walsh 2017, "Always valid inference"): for the difference of two
conversion rates θ = p_B − p_A with estimate θ̂ = p̂_B − p̂_A and variance V = p̄(1 − p̄)(1/n_A + 1/n_B) (pooled,
i.e. under the null), the mixture likelihood ratio against H0: θ = 0 with mixing distribution N(0, τ²) is

    Λ = sqrt(V / (V + τ²)) · exp( τ² θ̂² / (2 V (V + τ²)) )

and the always-valid p-value is p_n = min(p_{n−1}, 1/Λ_n). Rejecting when p_n ≤ α keeps the chance of ever
rejecting a true null ≤ α however often one looks (Ville's inequality, up to the normal approximation, which is
why no decision is made before ``MIN_PER_ARM`` customers and ``MIN_CONVERSIONS`` conversions). Inverting the test
gives the always-valid confidence sequence θ̂ ± sqrt( V (V + τ²) / τ² · (log((V + τ²)/V) − 2 log α) ).
Several arms against one comparator: α is split evenly (Bonferroni).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TAU = 0.05  # mixing s.d. on the scale of conversion-rate differences (5 points)
MIN_PER_ARM = 30
MIN_CONVERSIONS = 5


@dataclass(frozen=True)
class Comparison:
    """One arm against the comparator: the difference, its always-valid interval and p-value, the decision."""

    difference: float
    low: float
    high: float
    p_value: float
    significant: bool
    ready: bool


def msprt_lambda(theta: float, v: float, tau: float = TAU) -> float:
    """The normal-mixture likelihood ratio Λ for an estimate ``theta`` with variance ``v``."""
    t2 = tau * tau
    return math.sqrt(v / (v + t2)) * math.exp(t2 * theta * theta / (2 * v * (v + t2)))


def compare(n_a: int, x_a: int, n_b: int, x_b: int, alpha: float, tau: float = TAU, p_prev: float = 1.0) -> Comparison:
    """Arm B (``x_b`` conversions of ``n_b``) against comparator A; ``p_prev`` the previous always-valid p."""
    if n_a <= 0 or n_b <= 0:
        return Comparison(0.0, -1.0, 1.0, 1.0, False, False)
    pa, pb = x_a / n_a, x_b / n_b
    theta = pb - pa
    pooled = (x_a + x_b) / (n_a + n_b)
    ready = min(n_a, n_b) >= MIN_PER_ARM and (x_a + x_b) >= MIN_CONVERSIONS and 0 < pooled < 1
    if not ready:
        return Comparison(theta, -1.0, 1.0, min(p_prev, 1.0), p_prev <= alpha, False)
    v = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    t2 = tau * tau
    lam = msprt_lambda(theta, v, tau)
    p = min(p_prev, 1.0 / lam if lam > 0 else 1.0)
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) - 2 * math.log(alpha)))
    return Comparison(theta, theta - half, theta + half, p, p <= alpha, True)


def wilson(x: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson 95% interval of a proportion (fixed sample; for display next to each arm's rate)."""
    if n == 0:
        return (0.0, 1.0)
    p = x / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))
