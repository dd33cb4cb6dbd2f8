"""Log-mean Divisia (LMDI-I, additive) split of the change of a product of factors.

For ``G = x1 · x2 · … · xn`` in two periods, factor k contributes ``L(G1, G0) · ln(xk1 / xk0)`` with the
logarithmic mean ``L(a, b) = (a − b) / (ln a − ln b)``, ``L(a, a) = a``; the contributions add up to
``G1 − G0`` exactly (Σ ln(xk1/xk0) = ln(G1/G0)). Arithmetic is done in ``Decimal`` with 50 significant digits,
so the sum matches ΔG to far below a cent after the conversion to float.

Zeros (Ang & Liu 2007, the limit of the ε-replacement): factors are a chain of ratios, so a zero factor makes
the following ones undefined (``None``: 0/0). When G is 0 in both periods every contribution is 0. When G is 0
in one period only, the first zero factor of that period takes the whole change (the limit as ε → 0) and its
undefined factors count as unchanged. Negative values are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

Number = float | int | Decimal

PRECISION = 50


def _dec(v: Number) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


def log_mean(a: Decimal, b: Decimal) -> Decimal:
    """The logarithmic mean L(a, b) of two positive numbers (L(a, a) = a)."""
    if a == b:
        return a
    return (a - b) / (a.ln() - b.ln())


def _product(xs: Sequence[Decimal | None]) -> Decimal:
    out = Decimal(1)
    for x in xs:
        if x is None or x == 0:
            return Decimal(0)
        out *= x
    return out


def lmdi(before: Sequence[Number | None], after: Sequence[Number | None]) -> list[Decimal]:
    """Contributions of each factor to ``∏after − ∏before`` (additive LMDI-I); they sum to that change.

    ``None`` = undefined (a ratio whose denominator is 0); it may only follow a zero factor.
    """
    if len(before) != len(after):
        raise ValueError("before and after need the same number of factors")
    with localcontext() as c:
        c.prec = PRECISION
        x0 = [None if v is None else _dec(v) for v in before]
        x1 = [None if v is None else _dec(v) for v in after]
        for xs in (x0, x1):
            if any(v is not None and v < 0 for v in xs):
                raise ValueError("LMDI factors must be ≥ 0")
            first_gap = next((i for i, v in enumerate(xs) if v is None or v == 0), None)
            if first_gap is not None and xs[first_gap] is None:
                raise ValueError("an undefined factor (None) must follow a zero factor")
        g0, g1 = _product(x0), _product(x1)
        n = len(x0)
        if g0 == 0 and g1 == 0:
            return [Decimal(0)] * n
        if g0 == 0 or g1 == 0:
            zero_side = x0 if g0 == 0 else x1
            k = next(i for i, v in enumerate(zero_side) if v is None or v == 0)
            out = [Decimal(0)] * n
            out[k] = g1 - g0
            return out
        w = log_mean(g1, g0)
        contrib = [w * (b / a).ln() for a, b in zip(x0, x1, strict=True)]  # type: ignore[operator]
        return [+v for v in contrib]
