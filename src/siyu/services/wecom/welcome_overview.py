"""Welcome messages (欢迎语) across a brand's channel codes: each code's text, attachments and gift with its send
counts from the onboarding records (``channel_code_adds.welcome``), a preview filled for a sample customer, and the
latest sends.  A guide sees the codes they are on and only their own sends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from siyu.services.context import Context
from siyu.services.wecom import channel_codes as codes
from siyu.services.wecom.welcome import compose
from siyu.stores.state.channel_code_models import ChannelCodeAddRow, ChannelCodeRow

STATUSES: tuple[str, ...] = ("sent", "delivered_before", "expired", "failed", "none", "pending", "sending")
SAMPLE_NAME = "小林"
MAX_SENDS = 500


def _counts(ctx: Context, brand_id: str, guide_id: str | None) -> dict[int, dict[str, int]]:
    q = select(ChannelCodeAddRow.code_id, ChannelCodeAddRow.welcome, func.count()).where(
        ChannelCodeAddRow.brand_id == brand_id
    )
    if guide_id is not None:
        q = q.where(ChannelCodeAddRow.guide_id == guide_id)
    out: dict[int, dict[str, int]] = {}
    with ctx.sessions() as s:
        for code_id, status, n in s.execute(q.group_by(ChannelCodeAddRow.code_id, ChannelCodeAddRow.welcome)):
            out.setdefault(int(code_id), dict.fromkeys(STATUSES, 0))[str(status)] = int(n)
    return out


def _guide_names(ctx: Context, brand_id: str) -> dict[str, str]:
    rows = ctx.warehouse.fetch("SELECT guide_id, name FROM guides WHERE brand_id = ?", [brand_id])
    return {str(g): str(n or g) for g, n in rows}


def messages(ctx: Context, brand_id: str, guide_id: str | None = None) -> list[dict[str, Any]]:
    """One row per channel code: its welcome (text, attachments, coupon) and the sends by status."""
    counts = _counts(ctx, brand_id, guide_id)
    out = []
    for c in codes.list_codes(ctx, brand_id, guide_id, include_deleted=True):
        w = c["welcome"] or {}
        n = counts.get(int(c["id"]), dict.fromkeys(STATUSES, 0))
        out.append(
            {
                "code_id": c["id"],
                "code": c["name"],
                "channel_id": c["channel_id"],
                "status": c["status"],
                "text": str(w.get("text") or ""),
                "attachments": len(w.get("attachments") or []),
                "attachment_types": [str(a.get("msgtype", "")) for a in w.get("attachments") or []],
                "coupon": (w.get("coupon") or {}).get("title") or "",
                "adds": sum(n.values()),
                **n,
            }
        )
    return out


def preview(
    ctx: Context, brand_id: str, code_id: int, name: str = SAMPLE_NAME, guide_id: str | None = None
) -> dict[str, Any]:
    """The code's welcome as a sample customer ``name`` would get it from the code's first guide."""
    c = codes.get_code(ctx, brand_id, code_id, guide_id)
    gid = guide_id or (c["guides"][0]["guide_id"] if c["guides"] else "")
    guide = _guide_names(ctx, brand_id).get(gid, gid)
    text, attachments = compose(c["welcome"] or {}, name.strip()[:30] or SAMPLE_NAME, guide)
    return {"code_id": c["id"], "name": name, "guide_id": gid, "guide": guide, "text": text, "attachments": attachments}


def latest_sends(
    ctx: Context, brand_id: str, guide_id: str | None = None, limit: int = 50, status: str | None = None
) -> list[dict[str, Any]]:
    """The latest welcome outcomes across codes, newest first."""
    q = (
        select(ChannelCodeAddRow, ChannelCodeRow.name)
        .join(ChannelCodeRow, ChannelCodeRow.id == ChannelCodeAddRow.code_id)
        .where(ChannelCodeAddRow.brand_id == brand_id)
    )
    if guide_id is not None:
        q = q.where(ChannelCodeAddRow.guide_id == guide_id)
    if status:
        q = q.where(ChannelCodeAddRow.welcome == status)
    q = q.order_by(ChannelCodeAddRow.id.desc()).limit(max(1, min(limit, MAX_SENDS)))
    with ctx.sessions() as s:
        return [
            {
                "id": r.id,
                "code_id": r.code_id,
                "code": name,
                "day": r.day,
                "guide_id": r.guide_id,
                "external_userid": r.external_userid,
                "welcome": r.welcome,
                "detail": r.welcome_detail,
                "text": r.welcome_text,
            }
            for r, name in s.execute(q)
        ]
