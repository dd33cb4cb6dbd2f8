"""Calibration/holdout checks of a fitted purchase-count model (Fader, Hardie & Lee 2005, figures 2–4).

- ``by_frequency``: customers grouped by calibration repeat purchases x = 0, 1, …, ``cap``+; for each group
  the mean actual holdout purchases next to the mean predicted E[Y(t*) | x, t_x, T].
- ``tracking``: expected cumulative repeat purchases of the whole cohort week by week,
  Σᵢ E[X(w − sᵢ)] over customers whose first purchase sᵢ is before week w — compare with the actual
  cumulative repeat purchases (the service counts them from the transaction log).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from siyu.clv.mle import Fit
from siyu.clv.models import transaction_model

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FrequencyRow:
    """One calibration-frequency group."""

    x: str
    customers: int
    actual: float
    predicted: float


def by_frequency(
    fit: Fit,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    holdout_x: npt.ArrayLike,
    holdout_length: float,
    cap: int = 7,
) -> list[FrequencyRow]:
    """Mean actual vs predicted holdout purchases by calibration frequency (the last group is ``cap``+)."""
    model = transaction_model(fit.model)
    xa = np.asarray(x, dtype=np.float64)
    predicted = model.conditional_expected_purchases(fit, holdout_length, xa, t_x, T)
    actual = np.asarray(holdout_x, dtype=np.float64)
    group = np.minimum(xa, cap).astype(int)
    rows = []
    for g in range(cap + 1):
        mask = group == g
        if not mask.any():
            continue
        rows.append(
            FrequencyRow(
                x=f"{g}+" if g == cap else str(g),
                customers=int(mask.sum()),
                actual=float(actual[mask].mean()),
                predicted=float(predicted[mask].mean()),
            )
        )
    return rows


def tracking(fit: Fit, birth: npt.ArrayLike, weeks: int, unit_per_week: float = 1.0) -> Array:
    """Expected cumulative repeat purchases at the end of each week 1..``weeks``.

    ``birth`` is each customer's first purchase, in weeks from the start of the cohort.
    """
    model = transaction_model(fit.model)
    births, counts = np.unique(np.asarray(birth, dtype=np.float64), return_counts=True)
    ends = np.arange(1, weeks + 1, dtype=np.float64)
    age = (ends[:, None] - births[None, :]) * unit_per_week
    expected = np.where(age > 0, model.expected_purchases(fit, np.maximum(age, 0.0)), 0.0)
    return np.asarray(expected @ counts)
