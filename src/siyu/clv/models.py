"""The purchase-count models by name, with the functions every one of them provides."""

from __future__ import annotations

from types import ModuleType

from siyu.clv import bgnbd, mbgnbd, pareto_nbd
from siyu.errors import SiyuError

TRANSACTION_MODELS: dict[str, ModuleType] = {m.NAME: m for m in (bgnbd, mbgnbd, pareto_nbd)}


def transaction_model(name: str) -> ModuleType:
    """The module of a purchase-count model (``fit``, ``p_alive``, ``expected_purchases``, …)."""
    try:
        return TRANSACTION_MODELS[name]
    except KeyError:
        known = ", ".join(TRANSACTION_MODELS)
        raise SiyuError(f"unknown model {name!r}; choose one of {known}", "model") from None
