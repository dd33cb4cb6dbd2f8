"""Quiz for points (答题领积分): one attempt per person per quiz per local day — the attempt row (unique key) and
the points lot are written in one transaction, so a second attempt never earns points."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from siyu.domain.engagement.common import local_day
from siyu.domain.engagement.quiz import QuizConfig, public_questions, score
from siyu.services.context import Context
from siyu.services.engagement.activities import load, require_open
from siyu.services.errors import Conflict
from siyu.services.rewards.points import earn_in
from siyu.stores.state.engagement_models import QuizAttemptRow
from siyu.stores.state.models import utcnow


def quiz_questions(ctx: Context, brand_id: str, activity_id: str) -> dict[str, Any]:
    """The quiz as a participant sees it (no answers)."""
    row = load(ctx, brand_id, activity_id, "quiz")
    cfg = QuizConfig.model_validate(row.config)
    return {
        "activity_id": activity_id,
        "name": row.name,
        "points_per_correct": cfg.points_per_correct,
        "questions": public_questions(cfg),
    }


def submit(
    ctx: Context,
    brand_id: str,
    activity_id: str,
    customer_id: str,
    answers: dict[str, int],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Score the answers and credit ``correct × points_per_correct`` points; a second attempt on the same local
    day is a Conflict. Returns ``{correct, total, points, results: {question id: right?}}``."""
    now = now or utcnow()
    row = load(ctx, brand_id, activity_id, "quiz")
    require_open(row, now)
    cfg = QuizConfig.model_validate(row.config)
    correct, pts = score(cfg, answers)
    day = local_day(now, cfg.timezone).isoformat()
    with ctx.sessions() as s:
        s.add(
            QuizAttemptRow(
                brand_id=brand_id,
                activity_id=activity_id,
                customer_id=customer_id,
                day=day,
                answers=answers,
                correct=correct,
                points=pts,
                created_at=now,
            )
        )
        try:
            s.flush()
        except IntegrityError:
            s.rollback()
            raise Conflict(f"{row.name}: already answered today ({day}); one attempt a day", "customer_id") from None
        entry_id = None
        if pts:
            entry = earn_in(
                s,
                brand_id,
                customer_id,
                pts,
                source="quiz",
                ref=f"{activity_id}:{day}",
                valid_days=cfg.points_valid_days,
                now=now,
            )
            entry_id = entry.id
        s.commit()
    by_id = {q.id: q.answer for q in cfg.questions}
    return {
        "activity_id": activity_id,
        "customer_id": customer_id,
        "day": day,
        "correct": correct,
        "total": len(cfg.questions),
        "points": pts,
        "ledger_entry": entry_id,
        "results": {qid: by_id[qid] == choice for qid, choice in answers.items()},
    }
