"""Member tiers (pure): thresholds on points earned and / or spend in a rolling window, and how a tier may fall.

``basis``: ``points`` (points earned in the window), ``spend`` (revenue orders in the window) or ``either``
(the higher tier of the two). Tiers are listed from the lowest; the lowest has thresholds 0. ``downgrade``:
``recompute`` (the tier is whatever the figures give at each recomputation), ``one_step`` (falls at most one
tier per recomputation), ``never`` (tiers only go up).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from siyu.domain.engagement.common import Model, first_error


class Tier(Model):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=100)
    min_points: int = Field(default=0, ge=0)
    min_spend: float = Field(default=0, ge=0)


class TierScheme(Model):
    basis: Literal["points", "spend", "either"] = "points"
    window_days: int = Field(default=365, ge=1, le=3650)
    downgrade: Literal["recompute", "one_step", "never"] = "recompute"
    tiers: list[Tier] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _check(self) -> TierScheme:
        first = self.tiers[0]
        if first.min_points or first.min_spend:
            raise ValueError("tiers: the first (lowest) tier must have min_points 0 and min_spend 0")
        for a, b in zip(self.tiers, self.tiers[1:], strict=False):
            if b.min_points < a.min_points or b.min_spend < a.min_spend:
                raise ValueError(f"tiers: {b.key!r} must not need less than {a.key!r}; list tiers from the lowest")
            if (b.min_points, b.min_spend) == (a.min_points, a.min_spend):
                raise ValueError(f"tiers: {b.key!r} needs the same as {a.key!r}; raise its threshold")
        keys = [t.key for t in self.tiers]
        if len(set(keys)) != len(keys):
            raise ValueError("tiers: each tier needs its own key")
        return self


def parse_scheme(data: dict[str, Any]) -> TierScheme:
    """Validate a tier scheme; errors name the field (``scheme.tiers.1.min_points``)."""
    try:
        return TierScheme.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, "scheme") from None


def _index(scheme: TierScheme, points: int, spend: float) -> int:
    by_points = max(i for i, t in enumerate(scheme.tiers) if points >= t.min_points)
    by_spend = max(i for i, t in enumerate(scheme.tiers) if spend >= t.min_spend)
    if scheme.basis == "points":
        return by_points
    if scheme.basis == "spend":
        return by_spend
    return max(by_points, by_spend)


def tier_for(scheme: TierScheme, points: int, spend: float) -> str:
    """The tier the figures qualify for."""
    return scheme.tiers[_index(scheme, points, spend)].key


def next_tier(scheme: TierScheme, current: str | None, points: int, spend: float) -> str:
    """The tier after a recomputation, applying the downgrade rule to the current tier (None = new member)."""
    earned = _index(scheme, points, spend)
    keys = [t.key for t in scheme.tiers]
    if current is None or current not in keys:
        return keys[earned]
    now = keys.index(current)
    if earned >= now or scheme.downgrade == "recompute":
        return keys[earned]
    if scheme.downgrade == "never":
        return current
    return keys[now - 1]
