"""Recency/frequency data for the BTYD models, compressed to distinct rows.

Customers with the same (x, t_x, T) contribute the same likelihood term, so the fit runs over distinct rows
weighted by how many customers share them (on CDNOW 2,357 customers become 1,0xx rows; with day-resolution
times a million customers become a few hundred thousand). The x-only terms (Γ functions of r + x, …) are
computed once per distinct x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from siyu.errors import SiyuError

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RFT:
    """Distinct (x, t_x, T) rows with weights; ``xs``/``xi`` index the distinct frequencies."""

    x: Array
    t_x: Array
    T: Array
    weight: Array
    xs: Array
    xi: npt.NDArray[np.intp]
    customers: int

    @property
    def repeat(self) -> npt.NDArray[np.bool_]:
        """Rows whose customers made at least one repeat purchase."""
        return self.x > 0


def _as_array(values: npt.ArrayLike, field: str) -> Array:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise SiyuError(f"{field} has missing or infinite values; drop or fill them before fitting", field)
    return arr


def check_rft(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> tuple[Array, Array, Array]:
    """Validate frequency/recency/age vectors: same length, x a whole number ≥ 0, 0 ≤ t_x ≤ T, t_x = 0 when x = 0."""
    xa, ta, Ta = _as_array(x, "x"), _as_array(t_x, "t_x"), _as_array(T, "T")
    if not (len(xa) == len(ta) == len(Ta)):
        raise SiyuError(f"x, t_x and T must have the same length (got {len(xa)}, {len(ta)}, {len(Ta)})", "x")
    if len(xa) == 0:
        raise SiyuError("no customers to fit: the summary is empty (check the calibration period)", "x")
    if np.any(xa < 0) or np.any(xa != np.round(xa)):
        raise SiyuError("x (repeat purchases) must be a whole number ≥ 0", "x")
    if np.any(ta < 0):
        raise SiyuError("t_x (time of the last repeat purchase) must be ≥ 0", "t_x")
    if np.any(ta > Ta + 1e-9):
        raise SiyuError("t_x must not exceed T (the last purchase cannot be after the end of calibration)", "t_x")
    if np.any(Ta <= 0):
        raise SiyuError("T (time since the first purchase) must be > 0; drop customers who joined on the last day", "T")
    if np.any((xa == 0) & (ta != 0)):
        raise SiyuError("t_x must be 0 for customers without repeat purchases (x = 0)", "t_x")
    return xa, ta, Ta


def compress(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> RFT:
    """Validate and collapse identical (x, t_x, T) rows into weighted distinct rows."""
    xa, ta, Ta = check_rft(x, t_x, T)
    w = np.ones_like(xa) if weight is None else _as_array(weight, "weight")
    if len(w) != len(xa) or np.any(w < 0):
        raise SiyuError("weight must have one non-negative value per customer", "weight")
    order = np.lexsort((Ta, ta, xa))
    xs_, ts_, Ts_ = xa[order], ta[order], Ta[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (np.diff(xs_) != 0) | (np.diff(ts_) != 0) | (np.diff(Ts_) != 0)
    group = np.cumsum(start) - 1
    weights = np.bincount(group, weights=w[order])
    dx = xs_[start]
    xs, xi = np.unique(dx, return_inverse=True)
    return RFT(
        x=dx,
        t_x=ts_[start],
        T=Ts_[start],
        weight=weights.astype(np.float64),
        xs=xs.astype(np.float64),
        xi=xi.reshape(-1),
        customers=round(float(w.sum())),
    )
