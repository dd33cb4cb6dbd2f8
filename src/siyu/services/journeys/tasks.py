"""Staff tasks (导购任务) created by journeys: a guide's list, complete, skip. A guide sees only their own tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.stores.state.journey_models import JourneyRow, JourneyTaskRow
from siyu.stores.state.models import utcnow

TASK_STATUSES = ("open", "done", "skipped")
KPI_FIELDS = ("tasks_assigned", "tasks_done", "tasks_skipped", "tasks_overdue", "task_completion")
MAX_PAGE_SIZE = 500


def customer_link(customer_id: str) -> str:
    """The customer 360 page of the console."""
    return f"/customers/{customer_id}"


def _as_dict(r: JourneyTaskRow, journey_name: str | None) -> dict[str, Any]:
    return {
        "id": r.id,
        "journey_id": r.journey_id,
        "journey_name": journey_name,
        "node_id": r.node_id,
        "customer_id": r.customer_id,
        "customer_url": customer_link(r.customer_id),
        "guide_id": r.guide_id,
        "kind": r.kind,
        "title": r.title,
        "script": r.script,
        "due_at": r.due_at.isoformat(),
        "status": r.status,
        "note": r.note,
        "created_at": r.created_at.isoformat(),
        "done_at": r.done_at.isoformat() if r.done_at else None,
        "done_by": r.done_by,
    }


def list_tasks(
    ctx: Context,
    user: User,
    status: str | None = "open",
    guide_id: str | None = None,
    due_before: datetime | None = None,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    """A page of tasks, soonest due first. Guides: their own only (``guide_id`` is ignored for them)."""
    if status is not None and status not in TASK_STATUSES:
        raise SiyuError(f"status must be one of {', '.join(TASK_STATUSES)}", "status")
    if page < 1:
        raise SiyuError(f"page must be 1 or more (got {page})", "page")
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise SiyuError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})", "page_size")
    T = JourneyTaskRow
    q = select(T, JourneyRow.name).join(JourneyRow, JourneyRow.id == T.journey_id).where(T.brand_id == user.brand_id)
    if user.role == Role.GUIDE:
        q = q.where(T.guide_id == (user.guide_id or ""))
    elif guide_id:
        q = q.where(T.guide_id == guide_id)
    if status:
        q = q.where(T.status == status)
    if due_before is not None:
        q = q.where(T.due_at <= due_before)
    with ctx.sessions() as s:
        total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = s.execute(q.order_by(T.due_at, T.id).limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": [_as_dict(r, n) for r, n in rows], "total": total, "page": page, "page_size": page_size}


def finish_task(ctx: Context, user: User, task_id: str, status: str, note: str = "") -> dict[str, Any]:
    """Complete (``done``) or skip (``skipped``) an open task; a guide only their own."""
    if status not in ("done", "skipped"):
        raise SiyuError("status must be done or skipped", "status")
    if len(note) > 2000:
        raise SiyuError("note is at most 2000 characters", "note")
    with ctx.sessions() as s, s.begin():
        r = s.get(JourneyTaskRow, task_id)
        mine = r is not None and r.brand_id == user.brand_id
        if mine and user.role == Role.GUIDE and r is not None:
            mine = r.guide_id == user.guide_id
        if r is None or not mine:
            raise NotFound(f"task {task_id!r} not found (or not one of your tasks)", "task_id")
        if r.status != "open":
            raise Conflict(f"task is {r.status} already", "status")
        r.status, r.note, r.done_at, r.done_by = status, note, utcnow(), user.username
        name = s.get(JourneyRow, r.journey_id)
        return _as_dict(r, name.name if name else None)


def completion_rate(done: int, assigned: int) -> float | None:
    """Done / assigned (None when nothing was assigned)."""
    return round(done / assigned, 4) if assigned else None


def task_kpis(
    ctx: Context, brand_id: str, start: datetime, end: datetime, now: datetime | None = None
) -> dict[str, dict[str, int | float | None]]:
    """Per guide, the tasks created in [start, end) (naive UTC): assigned, done, skipped, overdue (still open and
    past due at ``now``) and the completion rate done / assigned. Tasks without a guide are left out."""
    now = now or utcnow()
    T = JourneyTaskRow

    def n(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    q = (
        select(
            T.guide_id,
            func.count(),
            n(T.status == "done"),
            n(T.status == "skipped"),
            n((T.status == "open") & (T.due_at < now)),
        )
        .where(T.brand_id == brand_id, T.guide_id.is_not(None), T.created_at >= start, T.created_at < end)
        .group_by(T.guide_id)
    )
    with ctx.sessions() as s:
        rows = s.execute(q).all()
    return {
        str(g): {
            "tasks_assigned": int(a),
            "tasks_done": int(d or 0),
            "tasks_skipped": int(k or 0),
            "tasks_overdue": int(o or 0),
            "task_completion": completion_rate(int(d or 0), int(a)),
        }
        for g, a, d, k, o in rows
    }
