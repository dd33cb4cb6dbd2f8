"""Campaign lifecycle: create / update (a new version each save) / validate / pilot / launch / end, and reads.

``status`` draft → pilot → live → ended (pilot may be skipped; ended is final). Definitions are parsed once per
(campaign, version) and cached in the process (the public pages read them on every request)."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from siyu.domain.campaign import CampaignDefinition, CampaignError, parse_campaign
from siyu.domain.campaign.rules import utc_naive
from siyu.errors import Conflict, NotFound, SiyuError
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignParticipantRow, CampaignRow, CampaignVersionRow

_cache: dict[tuple[str, int], CampaignDefinition] = {}
_rows: dict[str, tuple[float, CampaignRow]] = {}
ROW_TTL = 1.0  # seconds a campaign row is reused by the public hot path (status / rule changes show within it)
_cache_lock = threading.Lock()
TRANSITIONS = {"pilot": ("draft",), "live": ("draft", "pilot"), "ended": ("draft", "pilot", "live")}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


def definition_of(row: CampaignRow) -> CampaignDefinition:
    """The parsed definition of a campaign row (cached per id + version)."""
    key = (row.id, row.version)
    cd = _cache.get(key)
    if cd is None:
        cd = parse_campaign(row.definition, strict=False)  # checked when it was saved
        with _cache_lock:
            _cache[key] = cd
    return cd


def campaign_dict(row: CampaignRow, participants: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "status": row.status,
        "version": row.version,
        "definition": row.definition,
        "budget_cap": row.budget_cap,
        "budget_spent": round(row.budget_spent, 6),
        "starts_at": _iso(row.starts_at),
        "ends_at": _iso(row.ends_at),
        "created_by": row.created_by,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "pilot_at": _iso(row.pilot_at),
        "launched_at": _iso(row.launched_at),
        "ended_at": _iso(row.ended_at),
    }
    if participants is not None:
        out["participants"] = participants
    return out


def check_rewards(ctx: Context, brand_id: str, cd: CampaignDefinition) -> None:
    """Every reward the definition names exists in the brand's catalogue (``/api/rewards``)."""
    from siyu.services.rewards import get_reward

    missing = [r for r in cd.reward_ids() if get_reward(ctx, brand_id, r) is None]
    if missing:
        raise CampaignError(
            [
                {"field": "rewards", "message": f"reward {r!r} does not exist; create it under /api/rewards first"}
                for r in missing
            ]
        )


def check_carrier(ctx: Context, brand_id: str, cd: CampaignDefinition) -> None:
    """The wecom_guide carrier names an active channel code of the brand."""
    if cd.carrier.kind != "wecom_guide":
        return
    from siyu.stores.state.channel_code_models import ChannelCodeRow

    with ctx.sessions() as s:
        code = s.get(ChannelCodeRow, cd.carrier.channel_code_id)
    if code is None or code.brand_id != brand_id or code.status != "active":
        raise CampaignError(
            [
                {
                    "field": "carrier.channel_code_id",
                    "message": f"channel code {cd.carrier.channel_code_id} does not exist (or is deleted); "
                    "create one under /api/wecom/codes",
                }
            ]
        )


def validate(ctx: Context, brand_id: str, data: Any) -> CampaignDefinition:
    """Parse and check a definition: fields, then reward ids and the carrier's channel code."""
    cd = parse_campaign(data)
    check_rewards(ctx, brand_id, cd)
    check_carrier(ctx, brand_id, cd)
    return cd


def _row(s: Any, brand_id: str, campaign_id: str) -> CampaignRow:
    row = s.get(CampaignRow, campaign_id)
    if row is None or row.brand_id != brand_id:
        raise NotFound(f"campaign {campaign_id!r} not found", "campaign_id")
    return row


def _apply(row: CampaignRow, cd: CampaignDefinition, data: dict[str, Any]) -> None:
    row.name = cd.name
    row.kind = cd.kind
    row.definition = data
    row.budget_cap = cd.budget
    row.starts_at = utc_naive(cd.starts_at, cd.timezone)
    row.ends_at = utc_naive(cd.ends_at, cd.timezone)


def create(ctx: Context, brand_id: str, data: dict[str, Any], created_by: str = "") -> dict[str, Any]:
    """Create a draft campaign from a definition (validated; rewards must exist). Returns the campaign."""
    cd = validate(ctx, brand_id, data)
    data = cd.model_dump(mode="json", exclude_none=True)
    now = utcnow()
    row = CampaignRow(id="cp_" + secrets.token_hex(6), brand_id=brand_id, status="draft", version=1)
    _apply(row, cd, data)
    row.created_by, row.created_at, row.updated_at, row.budget_spent = created_by, now, now, 0.0
    with ctx.sessions() as s, s.begin():
        s.add(row)
        s.flush()
        s.add(CampaignVersionRow(campaign_id=row.id, version=1, definition=data, created_by=created_by, created_at=now))
    return campaign_dict(row)


def update(ctx: Context, brand_id: str, campaign_id: str, data: dict[str, Any], by: str = "") -> dict[str, Any]:
    """Save a new version of the definition. A live campaign may change everything but its kind; an ended one
    is frozen."""
    cd = validate(ctx, brand_id, data)
    data = cd.model_dump(mode="json", exclude_none=True)
    with ctx.sessions() as s, s.begin():
        row = _row(s, brand_id, campaign_id)
        if row.status == "ended":
            raise Conflict("the campaign has ended; copy it into a new campaign instead", "status")
        if row.status != "draft" and cd.kind != row.kind:
            raise SiyuError(f"a {row.status} campaign cannot change its kind ({row.kind})", "kind")
        row.version += 1
        _apply(row, cd, data)
        row.updated_at = utcnow()
        s.add(CampaignVersionRow(campaign_id=row.id, version=row.version, definition=data, created_by=by))
    _rows.pop(campaign_id, None)
    return campaign_dict(row)


def transition(ctx: Context, brand_id: str, campaign_id: str, to: str) -> dict[str, Any]:
    """Move to ``pilot`` (needs a ``pilot`` section), ``live`` or ``ended``; rewards and carrier are re-checked
    before opening."""
    if to not in TRANSITIONS:
        raise SiyuError(f"status {to!r}: use pilot, live or ended", "status")
    with ctx.sessions() as s, s.begin():
        row = _row(s, brand_id, campaign_id)
        if row.status == to:
            return campaign_dict(row)
        if row.status not in TRANSITIONS[to]:
            raise Conflict(f"a {row.status} campaign cannot move to {to}", "status")
        cd = definition_of(row)
        if to in ("pilot", "live"):
            check_rewards(ctx, brand_id, cd)
            check_carrier(ctx, brand_id, cd)
            if to == "pilot" and cd.pilot is None:
                raise SiyuError("add a 'pilot' section (segment_id and/or percent) before starting a pilot", "pilot")
        now = utcnow()
        row.status = to
        row.updated_at = now
        if to == "pilot":
            row.pilot_at = now
        elif to == "live":
            row.launched_at = now
        else:
            row.ended_at = now
    _rows.pop(campaign_id, None)
    return campaign_dict(row)


def launch(ctx: Context, brand_id: str, campaign_id: str) -> dict[str, Any]:
    """Open the campaign to everyone (status live)."""
    return transition(ctx, brand_id, campaign_id, "live")


def pilot(ctx: Context, brand_id: str, campaign_id: str) -> dict[str, Any]:
    """Open the campaign to its pilot audience only (前期验证)."""
    return transition(ctx, brand_id, campaign_id, "pilot")


def end(ctx: Context, brand_id: str, campaign_id: str) -> dict[str, Any]:
    """Close the campaign (final)."""
    return transition(ctx, brand_id, campaign_id, "ended")


def get(ctx: Context, brand_id: str, campaign_id: str) -> dict[str, Any]:
    """One campaign with its participant count."""
    with ctx.sessions() as s:
        row = _row(s, brand_id, campaign_id)
        n = s.scalar(select(func.count()).where(CampaignParticipantRow.campaign_id == campaign_id))
    return campaign_dict(row, int(n or 0))


def cached_row(ctx: Context, brand_id: str, campaign_id: str) -> CampaignRow:
    """``get_row`` reused for ``ROW_TTL`` seconds (changes made in this process show at once)."""
    hit = _rows.get(campaign_id)
    now = time.monotonic()
    if hit is not None and now - hit[0] < ROW_TTL and hit[1].brand_id == brand_id:
        return hit[1]
    row = get_row(ctx, brand_id, campaign_id)
    _rows[campaign_id] = (now, row)
    return row


def get_row(ctx: Context, brand_id: str, campaign_id: str) -> CampaignRow:
    """The campaign row (NotFound for another brand's)."""
    with ctx.sessions() as s:
        return _row(s, brand_id, campaign_id)


def list_campaigns(ctx: Context, brand_id: str, status: str | None = None) -> list[dict[str, Any]]:
    """The brand's campaigns, newest first, with participant counts."""
    with ctx.sessions() as s:
        q = select(CampaignRow).where(CampaignRow.brand_id == brand_id)
        if status:
            q = q.where(CampaignRow.status == status)
        rows = s.scalars(q.order_by(CampaignRow.created_at.desc())).all()
        counts = dict(
            s.execute(
                select(CampaignParticipantRow.campaign_id, func.count())
                .where(CampaignParticipantRow.brand_id == brand_id)
                .group_by(CampaignParticipantRow.campaign_id)
            ).all()
        )
    return [campaign_dict(r, int(counts.get(r.id, 0))) for r in rows]


def versions(ctx: Context, brand_id: str, campaign_id: str) -> list[dict[str, Any]]:
    """Every saved definition, oldest first."""
    with ctx.sessions() as s:
        _row(s, brand_id, campaign_id)
        rows = s.scalars(
            select(CampaignVersionRow)
            .where(CampaignVersionRow.campaign_id == campaign_id)
            .order_by(CampaignVersionRow.version)
        ).all()
    return [
        {"version": r.version, "definition": r.definition, "created_by": r.created_by, "created_at": _iso(r.created_at)}
        for r in rows
    ]
