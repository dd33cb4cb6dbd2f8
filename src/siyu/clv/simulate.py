"""Draw synthetic customers from a BG/NBD process (for benchmarks and recovery tests)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def bgnbd_customers(
    n: int, r: float, alpha: float, a: float, b: float, T: npt.ArrayLike, seed: int = 0, unit_days: float = 7.0
) -> tuple[Array, Array, Array]:
    """x, t_x, T of ``n`` customers observed for ``T`` time units each; times are rounded down to whole days."""
    rng = np.random.default_rng(seed)
    Ta = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    idx = np.arange(n)
    while idx.size:
        clock[idx] += rng.exponential(1.0, idx.size) / np.maximum(lam[idx], 1e-300)
        bought = clock[idx] <= Ta[idx]
        live = idx[bought]
        x[live] += 1
        t_x[live] = clock[live]
        drop = rng.random(live.size) < p[live]
        active[live[drop]] = False
        idx = live[~drop]
    day = 1.0 / unit_days
    T_days = np.floor(Ta / day) * day
    t_days = np.minimum(np.floor(t_x / day) * day, T_days)
    return x, t_days, T_days


def pareto_nbd_customers(
    n: int, r: float, alpha: float, s: float, beta: float, T: npt.ArrayLike, seed: int = 0
) -> tuple[Array, Array, Array]:
    """x, t_x, T of ``n`` customers from a Pareto/NBD process (continuous time)."""
    rng = np.random.default_rng(seed)
    Ta = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    end = np.minimum(rng.exponential(1.0, n) / np.maximum(mu, 1e-300), Ta)
    x = rng.poisson(lam * end).astype(np.float64)
    # given x purchases in (0, end], their times are uniform; the last is end × max of x uniforms
    t_x = np.where(x > 0, end * rng.random(n) ** (1.0 / np.maximum(x, 1.0)), 0.0)
    return x, t_x, Ta
