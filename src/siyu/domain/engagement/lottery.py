"""Lottery draws (pure): a prize pool with probabilities, the "no prize" remainder and the draw itself.

Probabilities must sum to at most 1; whatever is left is the chance of no prize. A draw takes one uniform
number u in [0, 1) and walks the prizes in their listed order (cumulative). If the prize drawn is out of stock
the draw is **no prize** (outcome ``out_of_stock``): its odds are not handed to the other prizes, so the
published odds of every other prize stay true. With a ``seed`` the number of each draw is derived from
(seed, activity, customer, day, attempt), so draws are reproducible (for tests and audits); without one it
comes from the system's secure generator.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from typing import Any

from pydantic import Field, ValidationError, model_validator

from siyu.domain.engagement.common import DEFAULT_TZ, Model, first_error, zone
from siyu.errors import SiyuError

PROB_EPS = 1e-9


class Prize(Model):
    """One prize: ``key`` (unique in the pool), display ``name``, the ``reward_id`` granted, ``probability``."""

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=100)
    reward_id: str = Field(min_length=1, max_length=64)
    probability: float = Field(gt=0, le=1)


class LotteryConfig(Model):
    """A lottery: the prize pool, draws allowed per person per local day, an optional seed, the time zone."""

    prizes: list[Prize] = Field(min_length=1, max_length=50)
    daily_limit: int = Field(default=1, ge=1, le=100)
    seed: str | None = Field(default=None, max_length=100)
    timezone: str = DEFAULT_TZ

    @model_validator(mode="after")
    def _check(self) -> LotteryConfig:
        total = sum(p.probability for p in self.prizes)
        if total > 1 + PROB_EPS:
            raise ValueError(f"prizes: the probabilities add up to {total:g}; they must add up to 1 or less")
        keys = [p.key for p in self.prizes]
        if len(set(keys)) != len(keys):
            raise ValueError("prizes: each prize needs its own key")
        return self

    @property
    def no_prize_probability(self) -> float:
        return max(0.0, 1.0 - sum(p.probability for p in self.prizes))


def parse_lottery(data: dict[str, Any]) -> LotteryConfig:
    """Validate a lottery config; errors name the field."""
    try:
        cfg = LotteryConfig.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc) from None
    zone(cfg.timezone)
    return cfg


def pick(prizes: list[Prize], u: float) -> Prize | None:
    """The prize a uniform number ``u`` in [0, 1) falls on (cumulative in listed order), or None (no prize)."""
    if not 0.0 <= u < 1.0:
        raise SiyuError(f"u must be in [0, 1) (got {u})", "u")
    acc = 0.0
    for prize in prizes:
        acc += prize.probability
        if u < acc:
            return prize
    return None


def draw_number(seed: str | None, activity_id: str, customer_id: str, day: str, attempt: int) -> float:
    """The uniform number of one draw: reproducible from the seed, else from the secure generator."""
    if seed is None:
        return secrets.randbelow(2**53) / 2**53
    digest = hashlib.sha256(f"{seed}|{activity_id}|{customer_id}|{day}|{attempt}".encode()).digest()
    return random.Random(digest).random()
