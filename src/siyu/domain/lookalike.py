"""Lookalike scoring (pure numpy): seed members vs the rest, a logistic regression, and its held-out lift.

Method (documented in docs/segments.md):
1. Features are standardised (z-scores; heavy-tailed counts and money are ``log1p``-ed first by the caller).
2. A logistic regression separates seed members (1) from every other customer (0): full-batch gradient descent
   on the class-balanced log loss with a small L2 penalty (no intercept penalty).
3. Each non-seed customer's score is the model's probability; the higher, the more alike.
4. Evaluation (held-out split): hide a share of the seed (``holdout``), train on the rest, rank every customer
   not used as a positive; lift in the top decile = (hidden members found in the top 10% / hidden members) / 10%.
   Lift 1 = no better than random; a seed with no pattern stays near 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Model:
    """Standardisation and logistic-regression weights."""

    mean: Array
    scale: Array
    weights: Array
    bias: float

    def score(self, x: Array) -> Array:
        """Probability of looking like the seed, per row of ``x``."""
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        out: Array = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        return out


def fit(x: Array, y: npt.NDArray[np.bool_], l2: float = 1e-3, steps: int = 400, lr: float = 0.5) -> Model:
    """Fit the class-balanced, L2-penalised logistic regression by gradient descent."""
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError("x must be rows × features with one label per row")
    pos = int(y.sum())
    if pos == 0 or pos == len(y):
        raise ValueError("need both seed members and other customers")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = (x - mean) / scale
    yf = y.astype(np.float64)
    weight = np.where(y, 0.5 / pos, 0.5 / (len(y) - pos))  # each class carries half the loss
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w + b, -30, 30)))
        g = weight * (p - yf)
        w -= lr * (xs.T @ g + l2 * w)
        b -= lr * float(g.sum())
    return Model(mean=mean, scale=scale, weights=w, bias=b)


@dataclass(frozen=True)
class Evaluation:
    """Held-out result: hidden seed members, how many the top decile found, and the lift."""

    hidden: int
    found_in_top_decile: int
    top_decile_size: int
    candidates: int
    lift: float


def evaluate(x: Array, seed: npt.NDArray[np.bool_], holdout: float = 0.2, rng_seed: int = 7) -> Evaluation:
    """Hide ``holdout`` of the seed, train on the rest, measure the top-decile lift on the hidden members."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be between 0 and 1")
    idx = np.flatnonzero(seed)
    rng = np.random.default_rng(rng_seed)
    hidden_n = max(1, round(len(idx) * holdout))
    if len(idx) - hidden_n < 1:
        raise ValueError("the seed is too small to hide a part of it")
    hidden = rng.choice(idx, size=hidden_n, replace=False)
    train_pos = np.zeros(len(seed), dtype=bool)
    train_pos[idx] = True
    train_pos[hidden] = False
    model = fit(x, train_pos)
    cand = np.flatnonzero(~train_pos)  # everyone not used as a positive (hidden members look like the rest)
    scores = model.score(x[cand])
    top_n = max(1, int(np.ceil(len(cand) * 0.1)))
    order = np.argsort(-scores, kind="stable")[:top_n]
    is_hidden = np.zeros(len(seed), dtype=bool)
    is_hidden[hidden] = True
    found = int(is_hidden[cand[order]].sum())
    share_top = top_n / len(cand)
    lift = (found / hidden_n) / share_top
    return Evaluation(hidden_n, found, top_n, len(cand), float(lift))
