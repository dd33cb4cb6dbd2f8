"""Customer lifetime value: expected purchases per period × expected spend, discounted.

    CLV = Σₖ₌₁..K ( E[Y(k·Δ) | x, t_x, T] − E[Y((k−1)·Δ) | x, t_x, T] ) · E[M | x, z̄] / (1 + d)^k
with Δ one month (365.25/12 days expressed in the summary's time unit), K the horizon in months and d the monthly
discount rate derived from the annual one, d = (1 + annual)^(1/12) − 1. This is the discounted-cash-flow
form used by ``lifetimes.customer_lifetime_value``; the monetary value is the Gamma-Gamma expected spend.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from siyu.clv import gamma_gamma
from siyu.clv.mle import Fit
from siyu.clv.models import transaction_model
from siyu.errors import SiyuError

Array = npt.NDArray[np.float64]
DAYS_PER_MONTH = 365.25 / 12


def monthly_rate(annual_discount_rate: float) -> float:
    """Monthly discount rate equivalent to an annual one."""
    if not 0 <= annual_discount_rate < 10:
        raise SiyuError("discount_rate is an annual rate between 0 and 10 (e.g. 0.1 for 10 %)", "discount_rate")
    return float((1 + annual_discount_rate) ** (1 / 12) - 1)


def lifetime_value(
    transactions: Fit,
    spend: Fit,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    zbar: npt.ArrayLike,
    months: int = 12,
    annual_discount_rate: float = 0.1,
    unit_days: float = 7.0,
    days_per_month: float = DAYS_PER_MONTH,
) -> Array:
    """Discounted expected value of each customer's purchases over the next ``months`` months."""
    if not 1 <= months <= 120:
        raise SiyuError("horizon must be between 1 and 120 months", "months")
    model = transaction_model(transactions.model)
    step = days_per_month / unit_days
    d = monthly_rate(annual_discount_rate)
    value = gamma_gamma.conditional_expected_spend(spend, x, zbar)
    total = np.zeros_like(np.asarray(x, dtype=np.float64))
    previous = np.zeros_like(total)
    for k in range(1, months + 1):  # P(alive) factors out of every period's expectation
        current = model.purchases_if_alive(transactions, k * step, x, T)
        total += (current - previous) / (1 + d) ** k
        previous = current
    return np.asarray(total * model.p_alive(transactions, x, t_x, T) * value)


def expected_purchases_in(
    transactions: Fit, months: int, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, unit_days: float = 7.0
) -> Array:
    """E[Y(t)] over the next ``months`` months."""
    model = transaction_model(transactions.model)
    return np.asarray(
        model.conditional_expected_purchases(transactions, months * DAYS_PER_MONTH / unit_days, x, t_x, T)
    )
