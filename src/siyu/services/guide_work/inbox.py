"""One inbox per guide: journey tasks (``siyu.services.journeys.tasks``), follow-up reminders, Moments tasks to
post and campaign tasks (``siyu.services.campaigns.tasks.open_tasks``), as
one list soonest due first. Nothing is copied: each source keeps its own table and is read here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from siyu.domain.brand_time import as_naive_utc
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.campaigns import tasks as campaign_tasks
from siyu.services.context import Context
from siyu.services.guide_work import followups, moments
from siyu.services.journeys import tasks as journey_tasks
from siyu.stores.state.models import utcnow

SOURCES = ("journey", "followup", "moment", "campaign")
MAX_ITEMS = 2000


def _campaign_items(ctx: Context, brand_id: str, guide_id: str | None) -> list[dict[str, Any]]:
    return [
        {k: t[k] for k in ("source", "id", "title", "customer_id", "guide_id", "due_at", "detail")}
        for t in ({**t, "source": "campaign"} for t in campaign_tasks.open_tasks(ctx, brand_id, guide_id))
    ]


def inbox(ctx: Context, user: User, guide_id: str | None = None, sources: tuple[str, ...] = SOURCES) -> dict[str, Any]:
    """Open items of one guide (a guide: always themself; a manager: ``guide_id`` or every guide), soonest due
    first, with counts per source and how many are overdue."""
    if user.role == Role.GUIDE:
        guide_id = user.guide_id or ""
    items: list[dict[str, Any]] = []
    if "journey" in sources:
        page = journey_tasks.list_tasks(ctx, user, "open", guide_id, None, 1, journey_tasks.MAX_PAGE_SIZE)
        items += [
            {
                "source": "journey",
                "id": t["id"],
                "title": t["title"],
                "customer_id": t["customer_id"],
                "guide_id": t["guide_id"],
                "due_at": t["due_at"],
                "detail": t["script"],
            }
            for t in page["items"]
        ]
    if "followup" in sources:
        items += [
            {
                "source": "followup",
                "id": str(f["id"]),
                "title": f["content"][:80],
                "customer_id": f["customer_id"],
                "guide_id": f["guide_id"],
                "due_at": f["next_at"],
                "detail": f["kind"],
            }
            for f in followups.reminders(ctx, user.brand_id, guide_id)
        ]
    if "moment" in sources and guide_id:
        items += [
            {
                "source": "moment",
                "id": m["id"],
                "title": m["title"],
                "customer_id": None,
                "guide_id": guide_id,
                "due_at": (m["suggested_times"] or [m["created_at"].isoformat()])[0],
                "detail": m["content"],
            }
            for m in moments.pending_for(ctx, user.brand_id, guide_id)
        ]
    if "campaign" in sources:
        items += _campaign_items(ctx, user.brand_id, guide_id)
    now = utcnow()
    for it in items:
        it["overdue"] = bool(it["due_at"]) and _utc(it["due_at"]) < now
    items.sort(key=lambda it: (_utc(it["due_at"]) if it["due_at"] else now, it["source"], it["id"]))
    counts = {s: sum(1 for it in items if it["source"] == s) for s in SOURCES}
    digest = followups.digest(ctx, user.brand_id, guide_id) if guide_id else None
    return {
        "guide_id": guide_id,
        "items": items[:MAX_ITEMS],
        "total": len(items),
        "counts": counts,
        "overdue": sum(1 for it in items if it["overdue"]),
        "digest": digest,
    }


def _utc(iso: str) -> datetime:
    """Naive UTC of an ISO time (times with an offset are converted; naive ones are UTC already)."""
    return as_naive_utc(datetime.fromisoformat(iso))
