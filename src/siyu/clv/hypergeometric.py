"""The Gauss hypergeometric function 2F1(a, b; a+1; z) for 0 ≤ z < 1 with its exact partial derivatives.

The Pareto/NBD likelihood needs exactly this family (c = a + 1). Summing the series
    F = Σₙ a/(a+n) · (b)ₙ/n! · zⁿ
term by term also gives the analytic derivatives in a, b and z, which ``scipy.special.hyp2f1`` does not:
    ∂F/∂a = Σ n/(a+n)² (b)ₙ/n! zⁿ,   ∂F/∂b = Σ a/(a+n) (b)ₙ/n! Hₙ(b) zⁿ with Hₙ(b) = Σ_{k<n} 1/(b+k),
    ∂F/∂z = Σ a/(a+n) · n (b)ₙ/n! zⁿ⁻¹.
Every term is positive, so there is no cancellation; the sum stops when the next term is below 1e-17 of the
total and the terms are shrinking. ``tests/test_clv_models.py`` checks F against ``scipy.special.hyp2f1``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from siyu.errors import SiyuError

Array = npt.NDArray[np.float64]
MAX_TERMS = 200_000
_EPS = 1e-17


def hyp2f1_a1(a: Array, b: Array, z: Array) -> tuple[Array, Array, Array, Array]:
    """F, ∂F/∂a, ∂F/∂b, ∂F/∂z of 2F1(a, b; a+1; z), elementwise (a > 0, b > 0, 0 ≤ z < 1).

    The terms are built as a rows × N block (cumulative products), N = 32 first; rows whose series has not
    converged by then are summed again with 4× more terms.
    """
    a, b, z = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(z, float))
    shape = a.shape
    a, b, z = a.ravel(), b.ravel(), z.ravel()
    if np.any(z >= 1) or np.any(z < 0):
        raise SiyuError("internal: 2F1 argument outside [0, 1)", "z")
    out = np.empty((4, a.size))
    todo = np.arange(a.size)
    terms = 16
    while todo.size:
        if terms > MAX_TERMS:
            raise SiyuError("2F1 series did not converge; the parameters are extreme for this data", "model")
        vals, ok = _block(a[todo], b[todo], z[todo], terms)
        out[:, todo[ok]] = vals[:, ok]
        todo = todo[~ok]
        terms *= 4
    return out[0].reshape(shape), out[1].reshape(shape), out[2].reshape(shape), out[3].reshape(shape)


def _block(a: Array, b: Array, z: Array, terms: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Sums of the first ``terms`` series terms (n = 1..terms) and whether each row has converged."""
    n = np.arange(1, terms + 1, dtype=np.float64)
    bn = b[:, None] + (n - 1)  # b + n − 1
    u = np.cumprod(bn * (z[:, None] / n), axis=1)  # (b)_n z^n / n!
    h = np.cumsum(1.0 / bn, axis=1)  # H_n(b)
    v = np.empty_like(u)  # n (b)_n z^(n−1) / n! = u_(n−1) (b + n − 1)
    v[:, 0] = b
    v[:, 1:] = u[:, :-1] * bn[:, 1:]
    an = a[:, None] + n
    coef = a[:, None] / an
    cu = coef * u
    f = 1.0 + cu.sum(axis=1)
    fa = (n / (an * an) * u).sum(axis=1)
    fb = (cu * h).sum(axis=1)
    fz = (coef * v).sum(axis=1)
    last_u, last_v = u[:, -1], v[:, -1]
    shrinking = (b + terms) * z < terms + 1
    ok = shrinking & (last_u * (1.0 + h[:, -1] + terms) <= _EPS * f) & (last_v <= _EPS * fz)
    return np.stack([f, fa, fb, fz]), ok
