"""siyu.clv.mle's convergence rule: a small gradient, or a Newton step that would add (almost) nothing."""

from __future__ import annotations

import numpy as np
import pytest

from siyu.clv.mle import _require_converged, newton_gain
from siyu.errors import SiyuError


def test_newton_gain_is_the_quadratic_models_rise() -> None:
    neg_h = np.array([[4.0, 1.0], [1.0, 3.0]])
    g = np.array([0.5, -0.2])
    step = np.linalg.solve(neg_h, g)
    assert newton_gain(neg_h, g) == pytest.approx(g @ step - step @ neg_h @ step / 2)
    assert newton_gain(np.array([[1.0, 0.0], [0.0, -1.0]]), g) == float("inf")  # no maximum there


def test_a_steep_ridge_with_a_rounding_gradient_is_converged_but_a_real_slope_is_not() -> None:
    # gradient 0.0084 over 363 customers (above 1e-5 × 363) along a direction of curvature 1e5: a Newton step
    # would add 3.5e-10 to the log-likelihood — the maximum, up to rounding
    neg_h = np.diag([1e5, 1e5])
    g = np.array([0.0084, 0.0074])
    _require_converged("gamma_gamma", -2417.56, g, 363, newton_gain(neg_h, g))
    flat = np.diag([1e-2, 1e-2])  # the same gradient on a gentle slope: 6e-3 still to gain
    with pytest.raises(SiyuError, match="did not converge"):
        _require_converged("gamma_gamma", -2417.56, g, 363, newton_gain(flat, g))
    with pytest.raises(SiyuError):
        _require_converged("gamma_gamma", float("nan"), g * 0, 363, 0.0)  # never on a non-finite likelihood
