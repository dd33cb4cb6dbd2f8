"""Moments (朋友圈) tasks: an operator publishes content (text + images / video / link) to guides through WeCom's
``add_moment_task`` — the guides named, or the guides of a segment's customers, or all guides with a WeCom
member id — visible to the customers with the given corp tags. ``get_moment_task_result`` turns the async job into
a moment_id; ``get_moment_list`` / ``get_moment_task`` then tell which guides posted (the ``guide_work.moments``
schedule polls every brand). Suggested posting times come from the brand's windows (seed 001: 21:00–22:00 and
06:00–07:00 by default).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from siyu.connectors.wecom.client import WeComClient
from siyu.domain import guide_work as rules
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError
from siyu.services.guide_work import settings as gw
from siyu.stores.state.guide_work_models import MomentTaskGuideRow, MomentTaskRow
from siyu.stores.state.models import BrandRow, utcnow

MAX_TEXT = 2000
MAX_ATTACHMENTS = 9
TRACK_DAYS = 30  # how long after publishing a task's completion is polled (get_moment_list's window)
ATTACHMENT_KINDS = ("image", "video", "link")


def suggested_times(ctx: Context, brand_id: str, now: datetime | None = None, count: int = 2) -> list[str]:
    """The next ``count`` posting-window starts (brand-local ISO times) from the brand's windows."""
    windows = gw.get_settings(ctx, brand_id).moment_windows
    at = (now or utcnow()).replace(tzinfo=UTC).astimezone(gw.TZ)
    out: list[str] = []
    for _ in range(count):
        nxt = rules.next_window(at, windows)
        out.append(nxt.isoformat(timespec="minutes"))
        end = next(
            datetime.combine(nxt.date(), e, nxt.tzinfo)
            for s, e in (rules.parse_window(w) for w in windows)
            if datetime.combine(nxt.date(), s, nxt.tzinfo) <= nxt < datetime.combine(nxt.date(), e, nxt.tzinfo)
        )
        at = end
    return out


def wecom_attachments(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our attachment shape (``{"type": "image", "media_id"}``, ``{"type": "link", "title", "url", "media_id"?}``)
    as WeCom's (``{"msgtype": ..., "<msgtype>": {...}}``), checked field by field."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise SiyuError(f"attachments: at most {MAX_ATTACHMENTS} (got {len(attachments)})", "attachments")
    out: list[dict[str, Any]] = []
    for i, a in enumerate(attachments):
        kind = a.get("type")
        if kind not in ATTACHMENT_KINDS:
            raise SiyuError(f"attachments[{i}].type must be one of {', '.join(ATTACHMENT_KINDS)}", f"attachments[{i}]")
        if kind in ("image", "video"):
            if not str(a.get("media_id") or "").strip():
                raise SiyuError(
                    f"attachments[{i}].media_id is required (upload the {kind} to WeCom first)",
                    f"attachments[{i}].media_id",
                )
            out.append({"msgtype": kind, kind: {"media_id": str(a["media_id"])}})
        else:
            url = str(a.get("url") or "")
            if not url.startswith(("http://", "https://")) or len(url) > 2048:
                raise SiyuError(f"attachments[{i}].url must be an http(s) URL", f"attachments[{i}].url")
            link = {"title": str(a.get("title") or "")[:128], "url": url}
            if a.get("media_id"):
                link["media_id"] = str(a["media_id"])
            out.append({"msgtype": "link", "link": link})
    return out


def _targets(
    ctx: Context, brand_id: str, guide_ids: list[str] | None, segment_id: str | None
) -> tuple[dict[str, str], list[str]]:
    """guide_id → WeCom userid of the task's guides, and the guides left out (no WeCom member id)."""
    known = gw.guide_map(ctx, brand_id)
    if guide_ids:
        bad = [g for g in guide_ids if g not in known]
        if bad:
            raise SiyuError(f"guide_ids: {bad} are not active guides of this brand", "guide_ids")
        chosen = list(dict.fromkeys(guide_ids))
    elif segment_id:
        from siyu.services.wecom.audience import relations

        chosen = sorted({r.guide_id for r in relations(ctx, brand_id, segment_id=segment_id)} & set(known))
        if not chosen:
            raise SiyuError(f"segment {segment_id!r} has no customer with a guide on WeCom", "segment_id")
    else:
        chosen = sorted(known)
    users = {g: str(known[g].wecom_userid) for g in chosen if known[g].wecom_userid}
    return users, [g for g in chosen if g not in users]


def _as_dict(r: MomentTaskRow, guides: list[MomentTaskGuideRow]) -> dict[str, Any]:
    done = sum(1 for g in guides if g.status == "done")
    valid = sum(1 for g in guides if g.status != "invalid")
    return {
        "id": r.id,
        "title": r.title,
        "content": r.content,
        "attachments": r.attachments,
        "tag_ids": r.tag_ids,
        "segment_id": r.segment_id,
        "suggested_times": r.windows,
        "status": r.status,
        "jobid": r.jobid,
        "moment_id": r.moment_id,
        "error": r.error,
        "invalid": r.invalid,
        "created_by": r.created_by,
        "created_at": r.created_at.isoformat(),
        "checked_at": r.checked_at.isoformat() if r.checked_at else None,
        "guides": [
            {
                "guide_id": g.guide_id,
                "userid": g.userid,
                "status": g.status,
                "done_at": g.done_at.isoformat() if g.done_at else None,
            }
            for g in sorted(guides, key=lambda g: g.guide_id)
        ],
        "targets": valid,
        "done": done,
        "completion": round(done / valid, 4) if valid else None,
    }


def publish(
    ctx: Context,
    user: User,
    client: WeComClient,
    title: str,
    content: str = "",
    attachments: list[dict[str, Any]] | None = None,
    guide_ids: list[str] | None = None,
    segment_id: str | None = None,
    tag_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Publish a Moments task through WeCom (admins and operators) and read its job result once."""
    gw.require_manager(user, "publish Moments tasks")
    title = title.strip()
    if not 1 <= len(title) <= 200:
        raise SiyuError("title: 1..200 characters naming the task", "title")
    if len(content) > MAX_TEXT or len(content.encode()) > 2 * MAX_TEXT:
        raise SiyuError(f"content is at most {MAX_TEXT} characters (4000 bytes)", "content")
    att = wecom_attachments(attachments or [])
    if not content.strip() and not att:
        raise SiyuError("content and attachments are both empty; give a text or at least one attachment", "content")
    tags = [str(t).strip() for t in tag_ids or []]
    if any(not t or len(t) > 64 for t in tags) or len(tags) > 100:
        raise SiyuError("tag_ids: up to 100 WeCom corp tag ids (et...), none empty", "tag_ids")
    users, left_out = _targets(ctx, user.brand_id, guide_ids, segment_id)
    if not users:
        raise SiyuError("none of the task's guides has a WeCom member id (wecom_userid)", "guide_ids")
    jobid = client.add_moment_task(content, att, sorted(users.values()), tags)
    tid = "mt_" + secrets.token_hex(8)
    with ctx.sessions() as s, s.begin():
        s.add(
            MomentTaskRow(
                id=tid,
                brand_id=user.brand_id,
                title=title,
                content=content,
                attachments=attachments or [],
                tag_ids=tags,
                segment_id=segment_id,
                windows=suggested_times(ctx, user.brand_id),
                jobid=jobid,
                status="creating",
                invalid={"guides_without_userid": left_out},
                created_by=user.username,
            )
        )
        for g, u in users.items():
            s.add(MomentTaskGuideRow(task_id=tid, guide_id=g, brand_id=user.brand_id, userid=u, status="pending"))
    return refresh(ctx, user, tid, client)


def _task(s: Any, user: User, task_id: str) -> MomentTaskRow:
    r = s.get(MomentTaskRow, task_id)
    if r is None or r.brand_id != user.brand_id:
        raise NotFound(f"Moments task {task_id!r} not found", "task_id")
    return r  # type: ignore[no-any-return]


def refresh(
    ctx: Context, user: User, task_id: str, client: WeComClient, posted: dict[str, set[str]] | None = None
) -> dict[str, Any]:
    """Read the job result (while creating) and which guides posted (once created). ``posted`` (moment_id →
    userids) saves the get_moment_task call when the caller has read it already."""
    with ctx.sessions() as s:
        r = _task(s, user, task_id)
        status, jobid, moment_id = r.status, r.jobid, r.moment_id
    now = utcnow()
    if status == "creating" and jobid:
        job = client.get_moment_task_result(jobid)
        if job["status"] == 3:
            res = job["result"]
            with ctx.sessions() as s, s.begin():
                r = _task(s, user, task_id)
                if int(res.get("errcode", 0)) != 0 or not res.get("moment_id"):
                    r.status, r.error = "failed", f"{res.get('errcode')}: {res.get('errmsg', '')}"
                else:
                    r.status, r.moment_id = "created", str(res["moment_id"])
                    bad_users = set((res.get("invalid_sender_list") or {}).get("user_list") or [])
                    bad_tags = list((res.get("invalid_external_contact_list") or {}).get("tag_list") or [])
                    r.invalid = {**(r.invalid or {}), "userids": sorted(bad_users), "tag_ids": bad_tags}
                    for g in s.scalars(select(MomentTaskGuideRow).where(MomentTaskGuideRow.task_id == task_id)):
                        if g.userid in bad_users:
                            g.status = "invalid"
                r.checked_at = now
                status, moment_id = r.status, r.moment_id
    if status == "created" and moment_id:
        done = posted.get(moment_id, set()) if posted is not None else None
        if done is None:
            done = {str(t["userid"]) for t in client.get_moment_task(moment_id) if int(t.get("publish_status", 0))}
        with ctx.sessions() as s, s.begin():
            r = _task(s, user, task_id)
            for g in s.scalars(select(MomentTaskGuideRow).where(MomentTaskGuideRow.task_id == task_id)):
                if g.status == "pending" and g.userid in done:
                    g.status, g.done_at = "done", now
            r.checked_at = now
    return get_task(ctx, user, task_id)


def get_task(ctx: Context, user: User, task_id: str) -> dict[str, Any]:
    """One task with its guides (a guide: only a task they are among, with their own row only)."""
    with ctx.sessions() as s:
        r = _task(s, user, task_id)
        guides = list(s.scalars(select(MomentTaskGuideRow).where(MomentTaskGuideRow.task_id == task_id)))
    if user.role == Role.GUIDE:
        guides = [g for g in guides if g.guide_id == user.guide_id]
        if not guides:
            raise NotFound(f"Moments task {task_id!r} not found (or not one of yours)", "task_id")
    return _as_dict(r, guides)


def list_tasks(ctx: Context, user: User, limit: int = 100) -> list[dict[str, Any]]:
    """Tasks newest first with completion per guide (a guide: the tasks they are among, their own row)."""
    if not 1 <= limit <= 500:
        raise SiyuError("limit must be 1..500", "limit")
    with ctx.sessions() as s:
        q = select(MomentTaskRow).where(MomentTaskRow.brand_id == user.brand_id)
        if user.role == Role.GUIDE:
            mine = select(MomentTaskGuideRow.task_id).where(MomentTaskGuideRow.guide_id == (user.guide_id or ""))
            q = q.where(MomentTaskRow.id.in_(mine))
        rows = list(s.scalars(q.order_by(MomentTaskRow.created_at.desc(), MomentTaskRow.id).limit(limit)))
        ids = [r.id for r in rows]
        guides: dict[str, list[MomentTaskGuideRow]] = {i: [] for i in ids}
        for g in s.scalars(select(MomentTaskGuideRow).where(MomentTaskGuideRow.task_id.in_(ids))):
            if user.role != Role.GUIDE or g.guide_id == user.guide_id:
                guides[g.task_id].append(g)
    return [_as_dict(r, guides[r.id]) for r in rows]


def pending_for(ctx: Context, brand_id: str, guide_id: str) -> list[dict[str, Any]]:
    """A guide's Moments tasks still to post (for the inbox)."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(MomentTaskRow, MomentTaskGuideRow)
            .join(MomentTaskGuideRow, MomentTaskGuideRow.task_id == MomentTaskRow.id)
            .where(
                MomentTaskGuideRow.brand_id == brand_id,
                MomentTaskGuideRow.guide_id == guide_id,
                MomentTaskGuideRow.status == "pending",
                MomentTaskRow.status.in_(("creating", "created")),
            )
            .order_by(MomentTaskRow.created_at)
        ).all()
    return [
        {"id": t.id, "title": t.title, "content": t.content, "suggested_times": t.windows, "created_at": t.created_at}
        for t, _ in rows
    ]


def poll_brand(ctx: Context, brand_id: str, client: WeComClient, now: datetime | None = None) -> dict[str, int]:
    """Refresh every task of the last ``TRACK_DAYS`` not yet complete: one get_moment_list over the window
    (which moments WeCom has), then get_moment_task per listed moment."""
    now = now or utcnow()
    user = User(0, brand_id, "scheduler", "scheduler", Role.ADMIN, None, "zh")
    since = now - timedelta(days=TRACK_DAYS)
    with ctx.sessions() as s:
        open_ids = list(
            s.scalars(
                select(MomentTaskRow.id).where(
                    MomentTaskRow.brand_id == brand_id,
                    MomentTaskRow.created_at >= since,
                    MomentTaskRow.status.in_(("creating", "created")),
                    MomentTaskRow.id.in_(
                        select(MomentTaskGuideRow.task_id).where(MomentTaskGuideRow.status == "pending")
                    ),
                )
            )
        )
    if not open_ids:
        return {"tasks": 0, "calls": 0}
    end_ts = int(now.replace(tzinfo=UTC).timestamp()) + 60
    listed = {str(m["moment_id"]) for m in client.get_moment_list(end_ts - TRACK_DAYS * 86400, end_ts, filter_type=0)}
    posted: dict[str, set[str]] = {}
    calls = 1
    for tid in open_ids:
        with ctx.sessions() as s:
            r = s.get(MomentTaskRow, tid)
            moment_id = r.moment_id if r else None
        if moment_id and moment_id in listed and moment_id not in posted:
            posted[moment_id] = {
                str(t["userid"]) for t in client.get_moment_task(moment_id) if int(t.get("publish_status", 0))
            }
            calls += 1
        refresh(ctx, user, tid, client, posted if moment_id else None)
    return {"tasks": len(open_ids), "calls": calls}


def poll_all(ctx: Context) -> dict[str, dict[str, int]]:
    """The ``guide_work.moments`` schedule: every brand with a WeCom secret; one brand's failure is logged."""
    from siyu.services.wecom.config import client_for, get_config

    with ctx.sessions() as s:
        brands = [b.id for b in s.scalars(select(BrandRow)) if ((b.settings or {}).get("wecom") or {}).get("secret")]
    out: dict[str, dict[str, int]] = {}
    for b in brands:
        try:
            client = client_for(get_config(ctx, b))
            try:
                out[b] = poll_brand(ctx, b, client)
            finally:
                client.close()
        except Exception:
            logging.getLogger(__name__).exception("polling the Moments tasks of brand %s failed", b)
    return out
