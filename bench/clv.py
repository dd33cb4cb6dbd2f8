"""CLV fits: ours vs lifetimes 0.11.3, same run, same machine (issue 5).

CDNOW (2,357 customers): BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma — median wall time of interleaved runs and
estimates. 1,000,000 synthetic customers drawn from the CDNOW BG/NBD fit (first purchases spread over 12 weeks,
times in whole days, spend from the CDNOW Gamma-Gamma fit): BG/NBD and Gamma-Gamma against lifetimes, Pareto/NBD
ours only. Goals: the same estimates to 3 decimals, ≥ 10× faster than lifetimes, 1 M customers in < 30 s.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siyu.clv import bgnbd, gamma_gamma, mbgnbd, pareto_nbd, simulate
from siyu.clv.data import compress

CDNOW = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow" / "cdnow_customers_summary_with_transactions.csv"
)
SYNTHETIC = 1_000_000


def _median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out = fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), out


def _peer_params(peer: Any, names: dict[str, str]) -> dict[str, float]:
    return {ours: float(peer.params_[theirs]) for ours, theirs in names.items()}


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(round(a[k], 3) == round(b[k], 3) for k in a)


def _compare(
    name: str,
    ours: Callable[[], Any],
    theirs: Callable[[], Any],
    names: dict[str, str],
    repeat: int,
    loglik_at: Callable[[np.ndarray], float] | None = None,
) -> dict:
    t_ours, fit = _median_time(ours, repeat)
    t_theirs, peer = _median_time(theirs, max(1, repeat // 3))
    theirs_params = _peer_params(peer, names)
    extra = {}
    if loglik_at is not None:  # where the two differ: whose point is the maximum?
        extra["log_likelihood_at_lifetimes_estimates"] = round(loglik_at(np.array(list(theirs_params.values()))), 6)
        extra["ours_higher_or_equal"] = fit.log_likelihood >= extra["log_likelihood_at_lifetimes_estimates"] - 1e-9
    return {
        **extra,
        "model": name,
        "ours_s": round(t_ours, 4),
        "lifetimes_s": round(t_theirs, 4),
        "speedup": round(t_theirs / t_ours, 1),
        "ours": {k: round(v, 5) for k, v in fit.params.items()},
        "lifetimes": {k: round(v, 5) for k, v in theirs_params.items()},
        "same_to_3_decimals": _same(fit.params, theirs_params),
        "log_likelihood": round(fit.log_likelihood, 4),
    }


def run() -> dict[str, Any]:
    """Run both comparisons and return the JSON result."""
    import lifetimes as lt

    warnings.filterwarnings("ignore")
    d = pd.read_csv(CDNOW)
    x, t_x, T, z = (d[c].to_numpy(float) for c in ("x", "t_x", "T", "zbar"))
    rep = d[d.x > 0]
    bg = {"r": "r", "alpha": "alpha", "a": "a", "b": "b"}
    pn = {"r": "r", "alpha": "alpha", "s": "s", "beta": "beta"}
    gg = {"p": "p", "q": "q", "gamma": "v"}
    cdnow = [
        _compare("bgnbd", lambda: bgnbd.fit(x, t_x, T), lambda: lt.BetaGeoFitter().fit(d.x, d.t_x, d["T"]), bg, 21),
        _compare(
            "mbgnbd", lambda: mbgnbd.fit(x, t_x, T), lambda: lt.ModifiedBetaGeoFitter().fit(d.x, d.t_x, d["T"]), bg, 21
        ),
        _compare(
            "pareto_nbd",
            lambda: pareto_nbd.fit(x, t_x, T),
            lambda: lt.ParetoNBDFitter().fit(d.x, d.t_x, d["T"]),
            pn,
            9,
            lambda theta: pareto_nbd.loglik(theta, compress(x, t_x, T))[0],
        ),
        _compare(
            "gamma_gamma", lambda: gamma_gamma.fit(x, z), lambda: lt.GammaGammaFitter().fit(rep.x, rep.zbar), gg, 21
        ),
    ]
    truth = bgnbd.fit(x, t_x, T)
    spend_truth = gamma_gamma.fit(x, z)
    rng = np.random.default_rng(11)
    birth_day = rng.integers(0, 84, SYNTHETIC)  # first purchases over 12 weeks, like CDNOW's cohort
    T_syn = (272 - birth_day) / 7.0
    t0 = time.perf_counter()
    sx, st, sT = simulate.bgnbd_customers(SYNTHETIC, *truth.theta(), T=T_syn, seed=12)
    p, q, g = spend_truth.theta()
    nu = rng.gamma(q, 1.0 / g, SYNTHETIC)
    sz = np.where(sx > 0, rng.gamma(p * np.maximum(sx, 1), 1.0 / (nu * np.maximum(sx, 1))), 0.0)
    simulate_s = time.perf_counter() - t0
    frame = pd.DataFrame({"x": sx, "t_x": st, "T": sT, "z": sz})
    srep = frame[frame.x > 0]
    synthetic = [
        _compare(
            "bgnbd",
            lambda: bgnbd.fit(sx, st, sT),
            lambda: lt.BetaGeoFitter().fit(frame.x, frame.t_x, frame["T"]),
            bg,
            3,
        ),
        _compare(
            "gamma_gamma", lambda: gamma_gamma.fit(sx, sz), lambda: lt.GammaGammaFitter().fit(srep.x, srep.z), gg, 3
        ),
    ]
    t_pn, pn_fit = _median_time(lambda: pareto_nbd.fit(sx, st, sT), 1)
    result = {
        "cdnow": cdnow,
        "synthetic": {
            "customers": SYNTHETIC,
            "drawn_from": {"bgnbd": truth.params, "gamma_gamma": spend_truth.params},
            "simulate_s": round(simulate_s, 2),
            "fits": synthetic,
            "pareto_nbd_ours_s": round(t_pn, 2),
            "pareto_nbd": {k: round(v, 4) for k, v in pn_fit.params.items()},
        },
    }
    every = cdnow + synthetic
    result["goal_met"] = {
        # equal to 3 decimals, or lifetimes stopped short of the maximum (our point has the higher likelihood)
        "same_estimates_3_decimals": all(c["same_to_3_decimals"] or c.get("ours_higher_or_equal") for c in every),
        "strictly_equal_3_decimals": all(c["same_to_3_decimals"] for c in every),
        "at_least_10x_faster": all(c["speedup"] >= 10 for c in every),
        "one_million_under_30s": synthetic[0]["ours_s"] < 30,
    }
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
