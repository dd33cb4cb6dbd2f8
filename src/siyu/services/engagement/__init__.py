"""Engagement: lottery, daily check-in, quiz for points and member tiers (rewards paid through
``siyu.services.rewards``)."""

from siyu.services.engagement.activities import (
    create_activity,
    get_activity,
    list_activities,
    set_status,
)
from siyu.services.engagement.checkin import check_in, checkin_status, make_up
from siyu.services.engagement.lottery import draw, lottery_stats
from siyu.services.engagement.quiz import quiz_questions, submit
from siyu.services.engagement.tiers import get_scheme, recompute, set_scheme, tier_counts, tier_of

__all__ = [
    "check_in",
    "checkin_status",
    "create_activity",
    "draw",
    "get_activity",
    "get_scheme",
    "list_activities",
    "lottery_stats",
    "make_up",
    "quiz_questions",
    "recompute",
    "set_scheme",
    "set_status",
    "submit",
    "tier_counts",
    "tier_of",
]
