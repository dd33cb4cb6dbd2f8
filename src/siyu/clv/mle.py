"""Maximum likelihood shared by every CLV model: fit on log-parameters, standard errors from the Hessian.

Each model supplies ``loglik(theta, data) -> (total log-likelihood, gradient)`` with an analytic gradient in its
natural parameters. We maximise over log θ with L-BFGS-B (the chain rule gives ∂/∂log θ = θ ∂/∂θ), finish with
Newton steps on the Hessian (central differences of the analytic gradient), and report the inverse observed
information's square roots as standard errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from siyu.errors import SiyuError

Array = npt.NDArray[np.float64]
LogLik = Callable[[Array, Any], tuple[float, Array]]
LogLikHess = Callable[[Array, Any], tuple[float, Array, Array]]
# converged when every ∂(mean log-likelihood per customer)/∂ log θ is below this
_GRAD_TOL = 1e-5
_GAIN_TOL = 1e-8  # log-likelihood per customer a Newton step may still add at convergence (a likelihood-ratio
# test weighs differences of ~1 in total: this is far below anything that changes a prediction)


@dataclass(frozen=True)
class Fit:
    """A fitted model: estimates, standard errors and how the fit went."""

    model: str
    params: dict[str, float]
    se: dict[str, float]
    log_likelihood: float
    customers: int
    iterations: int
    converged: bool
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)

    def theta(self) -> Array:
        """The estimates as an array in the model's parameter order."""
        return np.array(list(self.params.values()), dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@cache
def _blas() -> ThreadpoolController:
    """The loaded BLAS libraries (found once: the search is slow)."""
    return ThreadpoolController()


def hessian(loglik: LogLik, theta: Array, data: Any, rel_step: float = 1e-5) -> Array:
    """Hessian of the log-likelihood: central differences of the analytic gradient, symmetrised."""
    k = len(theta)
    h = np.empty((k, k))
    for j in range(k):
        step = rel_step * max(abs(theta[j]), 1e-8)
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        h[:, j] = (loglik(up, data)[1] - loglik(down, data)[1]) / (2 * step)
    return (h + h.T) / 2


def maximise(
    model: str,
    names: Sequence[str],
    loglik: LogLik,
    data: Any,
    start: Array,
    customers: int,
    hess: LogLikHess | None = None,
    upper: Array | None = None,
) -> Fit:
    """Maximise ``loglik`` from ``start``; raise a clear error if it does not converge.

    With an analytic Hessian (``hess``) the fit is a damped Newton method, projected onto ``upper`` (per-parameter
    upper bounds, ``inf`` for none) when given; otherwise L-BFGS-B followed by Newton steps on a finite-difference
    Hessian of the analytic gradient. A parameter that ends on its bound is named in ``Fit.extra`` as
    ``at_bound:<name>``.
    """
    # Single-threaded BLAS: the fits make many tiny BLAS calls (L-BFGS-B updates, 4×4 solves) and OpenBLAS's
    # worker threads spin on them — 10× slower on a busy 2-core machine, never faster.
    with _blas().limit(limits=1, user_api="blas"):
        return _maximise(model, names, loglik, data, start, customers, hess, upper)


def _maximise(
    model: str,
    names: Sequence[str],
    loglik: LogLik,
    data: Any,
    start: Array,
    customers: int,
    hess: LogLikHess | None,
    upper: Array | None,
) -> Fit:
    began = time.perf_counter()
    if hess is not None:
        log_upper = np.full(len(start), np.inf) if upper is None else np.log(np.asarray(upper, dtype=np.float64))
        return _newton_fit(model, names, hess, data, start, log_upper, customers, began)
    if upper is not None:
        raise ValueError("upper bounds need an analytic Hessian")

    scale = 1.0 / max(customers, 1)  # per-customer mean: gradients O(1), so the first line search stays sane

    def objective(log_theta: Array) -> tuple[float, Array]:
        theta = np.exp(log_theta)
        ll, grad = loglik(theta, data)
        if not np.isfinite(ll):
            return 1e300, np.zeros_like(theta)
        return -ll * scale, -grad * theta * scale

    result = minimize(
        objective,
        np.log(start),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-20.0, 20.0)] * len(start),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20},
    )
    log_theta = result.x
    iterations = int(result.nit)
    # Newton polish in log space: quadratic convergence to the digits the published estimates give. The last
    # Hessian (natural parameters) gives the standard errors when the final step was negligible.
    h_nat: Array | None = None
    last_step = np.inf
    for _ in range(6):
        theta = np.exp(log_theta)
        ll0, g_nat = loglik(theta, data)
        g = g_nat * theta
        if h_nat is not None and np.max(np.abs(g)) < 1e-9:
            break
        h_nat = hessian(loglik, theta, data)
        h = h_nat * np.outer(theta, theta) + np.diag(g)
        try:
            step = np.linalg.solve(h, -g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1.0:
            break
        candidate = log_theta + step
        if loglik(np.exp(candidate), data)[0] < ll0 - 1e-9:
            break
        log_theta = candidate
        last_step = float(np.max(np.abs(step)))
        iterations += 1
        if last_step < 1e-7:
            break
    theta = np.exp(log_theta)
    ll, grad = loglik(theta, data)
    _require_converged(model, ll, grad * theta, customers)
    if h_nat is None or last_step > 1e-4:
        h_nat = hessian(loglik, theta, data)
    return _fit(model, names, theta, ll, h_nat, customers, iterations, began)


def _newton_fit(
    model: str,
    names: Sequence[str],
    hess: LogLikHess,
    data: Any,
    start: Array,
    log_upper: Array,
    customers: int,
    began: float,
) -> Fit:
    """Newton ascent in log-parameters with an analytic Hessian and Levenberg–Marquardt damping.

    Simple upper bounds are kept by projection: a parameter on its bound whose gradient points outwards is held
    there (its row and column leave the Newton system) and does not count against convergence.
    """
    log_theta = np.minimum(np.log(start), log_upper)
    ll, g_nat, h_nat = hess(np.exp(log_theta), data)
    lam = 0.0
    iterations = 0
    for iterations in range(1, 500):  # noqa: B007 - the count is reported
        theta = np.exp(log_theta)
        g = g_nat * theta
        free = ~_on_bound(log_theta, log_upper, g)
        if not free.all() and np.any(log_theta[~free] < log_upper[~free]):  # snap onto the bound
            log_theta = np.where(free, log_theta, log_upper)
            ll, g_nat, h_nat = hess(np.exp(log_theta), data)
            continue
        if np.max(np.abs(g[free])) < 1e-9:
            break
        neg_h = -(h_nat * np.outer(theta, theta) + np.diag(g))[np.ix_(free, free)]
        g_free = g[free]
        scale = max(1.0, float(np.max(np.abs(np.diag(neg_h)))))
        eye = np.eye(len(g_free))
        step = np.zeros_like(g)
        accepted = False
        while lam < 1e12:  # lam = 0 is a plain Newton step
            try:  # only positive-definite systems give an ascent direction
                chol = np.linalg.cholesky(neg_h + lam * scale * eye)
            except np.linalg.LinAlgError:
                lam = max(lam * 10, 1e-6)
                continue
            step[free] = np.linalg.solve(chol.T, np.linalg.solve(chol, g_free))
            if np.max(np.abs(step)) > 5:
                step *= 5 / np.max(np.abs(step))
            cand = np.minimum(log_theta + step, log_upper)
            c_ll, c_g, c_h = hess(np.exp(cand), data)
            if np.isfinite(c_ll) and c_ll >= ll:
                step = cand - log_theta
                log_theta, ll, g_nat, h_nat = cand, c_ll, c_g, c_h
                lam = lam / 10
                accepted = True
                break
            lam = max(lam * 10, 1e-6)
        if not accepted or np.max(np.abs(step)) < 1e-13:
            break
    theta = np.exp(log_theta)
    g = g_nat * theta
    bound = _on_bound(log_theta, log_upper, g)
    free = ~bound
    neg_h = -(h_nat * np.outer(theta, theta) + np.diag(g))[np.ix_(free, free)]
    _require_converged(model, ll, np.where(bound, 0.0, g), customers, newton_gain(neg_h, g[free]))
    fit = _fit(model, names, theta, ll, h_nat, customers, iterations, began)
    for name, at in zip(names, bound, strict=True):
        if at:
            fit.extra[f"at_bound:{name}"] = 1.0
    return fit


def _on_bound(log_theta: Array, log_upper: Array, g: Array) -> npt.NDArray[np.bool_]:
    """Parameters on (or within 1e-6 in log of) their upper bound whose gradient points outwards."""
    return (log_theta >= log_upper - 1e-6) & (g > 0)


def newton_gain(neg_h: Array, g: Array) -> float:
    """The log-likelihood a full Newton step would still add, gᵀ(−H)⁻¹g / 2 (inf unless −H is positive
    definite): below rounding, the fit is at its maximum whatever the gradient's size."""
    try:
        chol = np.linalg.cholesky(neg_h)
    except np.linalg.LinAlgError:
        return float("inf")
    z = np.linalg.solve(chol, g)
    return float(z @ z) / 2


def _require_converged(model: str, ll: float, grad_log: Array, customers: int, gain: float = float("inf")) -> None:
    """A clear error unless the log-likelihood is finite and either ∂/∂log θ is below the per-customer tolerance
    or a Newton step would add less than ``_GAIN_TOL`` per customer (a steep, narrow ridge: there the gradient
    left by floating-point rounding can exceed the tolerance although the maximum is reached: a gamma-gamma
    fit at q's bound did so once, on a busy machine)."""
    n = max(customers, 1)
    small = np.max(np.abs(grad_log)) < _GRAD_TOL * n or gain < _GAIN_TOL * n
    if not (np.isfinite(ll) and small):
        raise SiyuError(
            f"{model} did not converge (log-likelihood {ll:.4f}, gradient {np.abs(grad_log).max():.3g}); "
            "the data may not fit this model — check the summary (x, t_x, T) or try another model",
            "model",
        )


def _fit(
    model: str,
    names: Sequence[str],
    theta: Array,
    ll: float,
    h_nat: Array,
    customers: int,
    iterations: int,
    began: float,
) -> Fit:
    """The converged fit, with standard errors from the Hessian in natural parameters."""
    return Fit(
        model=model,
        params={n: float(v) for n, v in zip(names, theta, strict=True)},
        se={n: float(v) for n, v in zip(names, _standard_errors(h_nat), strict=True)},
        log_likelihood=float(ll),
        customers=customers,
        iterations=iterations,
        converged=True,
        seconds=time.perf_counter() - began,
    )


def _standard_errors(h: Array) -> Array:
    try:
        cov = np.linalg.inv(-h)
    except np.linalg.LinAlgError:
        return np.full(len(h), np.nan)
    diag = np.diag(cov)
    return np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)


def require_fit(fit: Fit, model: str) -> Array:
    """The estimates of ``fit`` if it is a fit of ``model``, else a clear error."""
    if fit.model != model:
        raise SiyuError(f"this is a {fit.model} fit; {model} predictions need a {model} fit", "model")
    return fit.theta()
