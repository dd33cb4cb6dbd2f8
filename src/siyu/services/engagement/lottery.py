"""Lottery draws: per-person daily limit (the draw row's unique attempt number enforces it under concurrency),
the prize picked by ``siyu.domain.engagement.lottery.pick`` and paid through ``rewards.grant`` (so prize stock
never oversells); a prize out of stock makes the draw "no prize" (outcome ``out_of_stock``). The draw row is
written (outcome ``pending``) before the prize is paid, so the attempt counts even if paying fails (``error``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.engagement.common import local_day
from siyu.domain.engagement.lottery import LotteryConfig, draw_number, pick
from siyu.errors import TooManyRequests
from siyu.services.context import Context
from siyu.services.engagement.activities import load, require_open
from siyu.services.rewards import RewardUnavailable, grant
from siyu.stores.state.engagement_models import LotteryDrawRow
from siyu.stores.state.models import utcnow


def _draws_today(ctx: Context, activity_id: str, customer_id: str, day: str) -> int:
    with ctx.sessions() as s:
        q = select(func.count()).where(
            LotteryDrawRow.activity_id == activity_id,
            LotteryDrawRow.customer_id == customer_id,
            LotteryDrawRow.day == day,
        )
        return int(s.scalar(q) or 0)


def _set_outcome(ctx: Context, draw_id: int, prize: str, outcome: str, grant_id: str | None) -> None:
    with ctx.sessions() as s:
        s.execute(
            update(LotteryDrawRow)
            .where(LotteryDrawRow.id == draw_id)
            .values(prize=prize, outcome=outcome, grant_id=grant_id)
        )
        s.commit()


def draw(
    ctx: Context, brand_id: str, activity_id: str, customer_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """Draw once for a customer: ``{outcome: won | no_prize | out_of_stock, prize, grant, attempt, draws_left}``.

    Raises TooManyRequests (429) past the daily limit (local day of the activity's time zone), Conflict when the
    lottery is paused / ended / not started."""
    now = now or utcnow()
    row = load(ctx, brand_id, activity_id, "lottery")
    require_open(row, now)
    cfg = LotteryConfig.model_validate(row.config)
    day = local_day(now, cfg.timezone).isoformat()
    for _ in range(cfg.daily_limit + 5):
        attempt = _draws_today(ctx, activity_id, customer_id, day) + 1
        if attempt > cfg.daily_limit:
            raise TooManyRequests(f"{row.name}: {cfg.daily_limit} draw(s) a day; come back tomorrow", "customer_id")
        draw_row = LotteryDrawRow(
            brand_id=brand_id,
            activity_id=activity_id,
            customer_id=customer_id,
            day=day,
            attempt=attempt,
            prize="",
            outcome="pending",
            created_at=now,
        )
        with ctx.sessions() as s:
            s.add(draw_row)
            try:
                s.commit()
                break
            except IntegrityError:
                s.rollback()  # another draw took this attempt number at the same moment: count again
    else:
        raise TooManyRequests(f"{row.name}: too many draws at once; try again", "customer_id")
    prize = pick(cfg.prizes, draw_number(cfg.seed, activity_id, customer_id, day, attempt))
    outcome, granted, reason = "no_prize", None, ""
    if prize is not None:
        try:
            granted = grant(
                ctx,
                brand_id,
                prize.reward_id,
                customer_id,
                source="lottery",
                source_ref=activity_id,
                idempotency_key=f"lottery:{activity_id}:{customer_id}:{day}:{attempt}",
                now=now,
            )
            outcome = "won"
        except RewardUnavailable as exc:
            outcome, reason = "out_of_stock", exc.message
        except Exception:
            _set_outcome(ctx, draw_row.id, prize.key, "error", None)  # the attempt stays used; nothing was paid
            raise
    _set_outcome(ctx, draw_row.id, prize.key if prize else "", outcome, granted["grant_id"] if granted else None)
    return {
        "activity_id": activity_id,
        "customer_id": customer_id,
        "day": day,
        "attempt": attempt,
        "draws_left": cfg.daily_limit - attempt,
        "outcome": outcome,
        "prize": {"key": prize.key, "name": prize.name} if prize and outcome == "won" else None,
        "drawn": prize.key if prize else None,
        "grant": granted,
        "reason": reason,
    }


def lottery_stats(ctx: Context, brand_id: str, activity_id: str) -> dict[str, Any]:
    """Draws by outcome and by prize, with the configured odds next to the observed share."""
    row = load(ctx, brand_id, activity_id, "lottery")
    cfg = LotteryConfig.model_validate(row.config)
    with ctx.sessions() as s:
        rows = s.execute(
            select(LotteryDrawRow.prize, LotteryDrawRow.outcome, func.count())
            .where(LotteryDrawRow.activity_id == activity_id)
            .group_by(LotteryDrawRow.prize, LotteryDrawRow.outcome)
        ).all()
    total = sum(int(n) for _, _, n in rows)
    by_outcome: dict[str, int] = {}
    won: dict[str, int] = {}
    for prize, outcome, n in rows:
        by_outcome[outcome] = by_outcome.get(outcome, 0) + int(n)
        if outcome == "won":
            won[prize] = won.get(prize, 0) + int(n)
    prizes = [
        {
            "key": p.key,
            "name": p.name,
            "reward_id": p.reward_id,
            "probability": p.probability,
            "won": won.get(p.key, 0),
            "share": won.get(p.key, 0) / total if total else None,
        }
        for p in cfg.prizes
    ]
    return {
        "draws": total,
        "by_outcome": by_outcome,
        "prizes": prizes,
        "no_prize_probability": cfg.no_prize_probability,
    }
