"""Channel codes (渠道活码): 联系我 codes per channel × guide(s), made through ``add_contact_way`` (config_id kept:
API-made codes are not shown in WeCom's admin console), each with a ``state`` attributing every add to the code's
channel, campaign and guide.  Several guides alternate (WeCom's round-robin); a guide who reached their daily cap is
taken off the code until the next day, and when every guide is capped the fallback guide gets the code.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError
from siyu.domain import channel_code as rules
from siyu.errors import Forbidden, NotFound, SiyuError
from siyu.services.context import Context
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.channel_code_models import ChannelCodeAddRow, ChannelCodeRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)
MAX_CODES_PER_BRAND = 10_000
QR_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass
class CodeSpec:
    """What an operator gives for a code (create: all; update: the fields set)."""

    name: str
    channel_id: str
    guides: list[dict[str, Any]]  # [{guide_id, cap (None = no cap)}]
    campaign: str = ""
    fallback_guide_id: str | None = None
    welcome: dict[str, Any] = field(default_factory=dict)  # {text, attachments, coupon: {id, title}}
    tag_channel: bool = True
    group_rules: list[dict[str, Any]] = field(default_factory=list)  # [{chat_ids, attribute, values, name}]


@contextmanager
def wecom(ctx: Context, brand_id: str, client: WeComClient | None = None) -> Iterator[WeComClient]:
    """The given client, or one for the brand's configured app (closed afterwards)."""
    if client is not None:
        yield client
        return
    own = client_for(get_config(ctx, brand_id))
    try:
        yield own
    finally:
        own.close()


# -- validation against the warehouse -------------------------------------------------------------------------
def _guide_rows(ctx: Context, brand_id: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    if not ids:
        return {}
    rows = ctx.warehouse.fetch(
        "SELECT guide_id, name, wecom_userid FROM guides WHERE brand_id = ? "
        f"AND guide_id IN ({','.join('?' * len(ids))})",
        [brand_id, *ids],
    )
    return {str(g): (str(n), str(u or "")) for g, n, u in rows}


def _slot(known: dict[str, tuple[str, str]], guide_id: str, cap: Any, fld: str) -> rules.GuideSlot:
    if guide_id not in known:
        raise SiyuError(f"guide {guide_id!r} does not exist in this brand; import it first", field=fld)
    userid = known[guide_id][1]
    if not userid:
        raise SiyuError(f"guide {guide_id!r} has no wecom_userid; import guides with their WeCom member id", field=fld)
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int)):
        raise SiyuError(f"daily cap of {guide_id!r} must be a whole number ≥ 1 or empty", field="daily_cap")
    return rules.GuideSlot(guide_id, userid, cap)


def _check(ctx: Context, brand_id: str, spec: CodeSpec) -> tuple[list[rules.GuideSlot], rules.GuideSlot | None]:
    name = spec.name.strip()
    if not 1 <= len(name) <= 100:
        raise SiyuError("name must be 1..100 characters", field="name")
    if not ctx.warehouse.fetch(
        "SELECT 1 FROM channels WHERE brand_id = ? AND channel_id = ?", [brand_id, spec.channel_id]
    ):
        raise SiyuError(f"channel {spec.channel_id!r} does not exist; import channels first", field="channel_id")
    if len(spec.campaign) > 64:
        raise SiyuError("campaign must be ≤ 64 characters", field="campaign")
    if not isinstance(spec.guides, list) or not all(isinstance(g, dict) and g.get("guide_id") for g in spec.guides):
        raise SiyuError("guides must be a list of {guide_id, cap}", field="guides")
    ids = [str(g["guide_id"]) for g in spec.guides] + ([spec.fallback_guide_id] if spec.fallback_guide_id else [])
    known = _guide_rows(ctx, brand_id, ids)
    slots = [_slot(known, str(g["guide_id"]), g.get("cap"), "guides") for g in spec.guides]
    fallback = _slot(known, spec.fallback_guide_id, None, "fallback_guide_id") if spec.fallback_guide_id else None
    rules.validate_slots(slots, fallback)
    w = spec.welcome or {}
    rules_ = _rules(spec.group_rules)
    rules.validate_welcome(str(w.get("text") or ""), list(w.get("attachments") or []), 1 if rules_ else 0)
    coupon = w.get("coupon")
    if coupon is not None and not (isinstance(coupon, dict) and coupon.get("id")):
        raise SiyuError("welcome.coupon must be {id, title}", field="coupon")
    rules.validate_rules(rules_)
    return slots, fallback


def _rules(raw: list[dict[str, Any]]) -> list[rules.GroupRule]:
    out: list[rules.GroupRule] = []
    for i, r in enumerate(raw or []):
        if not isinstance(r, dict):
            raise SiyuError(f"group_rules[{i}] must be an object", field="group_rules")
        out.append(
            rules.GroupRule(
                tuple(str(c) for c in r.get("chat_ids") or []),
                str(r.get("attribute") or ""),
                tuple(str(v) for v in r.get("values") or []),
                str(r.get("name") or ""),
            )
        )
    return out


def slots_of(row: ChannelCodeRow) -> tuple[list[rules.GuideSlot], rules.GuideSlot | None]:
    slots = [rules.GuideSlot(g["guide_id"], g["userid"], g.get("cap")) for g in row.guides]
    fb = row.fallback
    return slots, (rules.GuideSlot(fb["guide_id"], fb["userid"]) if fb else None)


def rules_of(row: ChannelCodeRow) -> list[rules.GroupRule]:
    return _rules(row.group_rules)


def public(row: ChannelCodeRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "channel_id": row.channel_id,
        "campaign": row.campaign,
        "guides": row.guides,
        "fallback": row.fallback,
        "state": row.state,
        "config_id": row.config_id,
        "qr_code": row.qr_code,
        "users": row.users,
        "rotation": row.rotation,
        "welcome": row.welcome,
        "tag_channel": bool(row.tag_channel),
        "tag_id": row.tag_id,
        "group_rules": row.group_rules,
        "join_ways": row.join_ways,
        "status": row.status,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


# -- CRUD ------------------------------------------------------------------------------------------------------
def _adds_today(ctx: Context, code_id: int, day: str) -> dict[str, int]:
    with ctx.sessions() as s:
        rows = s.execute(
            select(ChannelCodeAddRow.guide_id, func.count())
            .where(ChannelCodeAddRow.code_id == code_id, ChannelCodeAddRow.day == day)
            .group_by(ChannelCodeAddRow.guide_id)
        ).all()
    return {str(g): int(n) for g, n in rows}


def _today() -> str:
    return rules.business_day(datetime.now(UTC)).isoformat()


def create_code(
    ctx: Context, brand_id: str, spec: CodeSpec, by: str = "", client: WeComClient | None = None
) -> dict[str, Any]:
    """Validate, make the 联系我 code in WeCom (add_contact_way, type 2 for several guides) and store it."""
    slots, fallback = _check(ctx, brand_id, spec)
    with ctx.sessions() as s, s.begin():
        n = s.scalar(select(func.count()).where(ChannelCodeRow.brand_id == brand_id)) or 0
        if n >= MAX_CODES_PER_BRAND:
            raise SiyuError(f"a brand may keep at most {MAX_CODES_PER_BRAND} channel codes", field="name")
        row = ChannelCodeRow(
            brand_id=brand_id,
            name=spec.name.strip(),
            channel_id=spec.channel_id,
            campaign=spec.campaign,
            guides=[{"guide_id": x.guide_id, "userid": x.userid, "cap": x.cap} for x in slots],
            fallback={"guide_id": fallback.guide_id, "userid": fallback.userid} if fallback else None,
            state=f"pending-{utcnow().timestamp():.6f}"[:30],
            welcome=spec.welcome or {},
            tag_channel=int(spec.tag_channel),
            group_rules=spec.group_rules or [],
            join_ways={},
            status="creating",
            created_by=by,
        )
        s.add(row)
        s.flush()
        code_id = row.id
        row.state = rules.make_state(
            code_id, spec.channel_id, spec.campaign, slots[0].guide_id if len(slots) == 1 else ""
        )
        state = row.state
    users, why = rules.rotation(slots, {}, fallback)
    try:
        with wecom(ctx, brand_id, client) as c:
            way = c.add_contact_way(users, state=state, remark=spec.name.strip()[:30], type=_way_type(slots, fallback))
    except Exception:
        with ctx.sessions() as s, s.begin():
            gone = s.get(ChannelCodeRow, code_id)
            if gone is not None:
                s.delete(gone)
        raise
    with ctx.sessions() as s, s.begin():
        row2 = s.get(ChannelCodeRow, code_id)
        assert row2 is not None
        row2.config_id, row2.qr_code, row2.users, row2.rotation = way.config_id, way.qr_code, users, why
        row2.status, row2.updated_at = "active", utcnow()
        return public(row2)


def _way_type(slots: Sequence[Any], fallback: Any) -> int:
    """WeCom's type: 1 (one member, fixed) for a lone guide without a fallback, else 2 (several; may change)."""
    return 1 if len(slots) == 1 and not fallback else 2


def _row(s: Any, brand_id: str, code_id: int) -> ChannelCodeRow:
    row = s.get(ChannelCodeRow, code_id)
    if row is None or row.brand_id != brand_id or row.status == "creating":
        raise NotFound(f"channel code {code_id} does not exist", field="code_id")
    return row  # type: ignore[no-any-return]


def get_code(ctx: Context, brand_id: str, code_id: int, guide_id: str | None = None) -> dict[str, Any]:
    """One code (a guide: only codes they are on)."""
    with ctx.sessions() as s:
        row = _row(s, brand_id, code_id)
        if guide_id is not None and not _on_code(row, guide_id):
            raise Forbidden("a guide sees only the channel codes they are on", field="code_id")
        return public(row)


def _on_code(row: ChannelCodeRow, guide_id: str) -> bool:
    return guide_id in {g["guide_id"] for g in row.guides} or bool(
        row.fallback and row.fallback["guide_id"] == guide_id
    )


def list_codes(
    ctx: Context, brand_id: str, guide_id: str | None = None, include_deleted: bool = False
) -> list[dict[str, Any]]:
    """The brand's codes, newest first (a guide: only the codes they are on)."""
    with ctx.sessions() as s:
        q = select(ChannelCodeRow).where(ChannelCodeRow.brand_id == brand_id, ChannelCodeRow.status != "creating")
        if not include_deleted:
            q = q.where(ChannelCodeRow.status == "active")
        rows = s.scalars(q.order_by(ChannelCodeRow.id.desc())).all()
        return [public(r) for r in rows if guide_id is None or _on_code(r, guide_id)]


def update_code(
    ctx: Context, brand_id: str, code_id: int, changes: dict[str, Any], client: WeComClient | None = None
) -> dict[str, Any]:
    """Change name, campaign, guides/caps, fallback, welcome, tagging or group rules; WeCom's code follows
    (update_contact_way: remark, state, users)."""
    with ctx.sessions() as s:
        row = _row(s, brand_id, code_id)
        if row.status != "active":
            raise SiyuError(f"channel code {code_id} is deleted", field="code_id")
        current = CodeSpec(
            row.name,
            row.channel_id,
            [{"guide_id": g["guide_id"], "cap": g.get("cap")} for g in row.guides],
            row.campaign,
            row.fallback["guide_id"] if row.fallback else None,
            row.welcome,
            bool(row.tag_channel),
            row.group_rules,
        )
    unknown = set(changes) - set(CodeSpec.__dataclass_fields__)
    if unknown:
        raise SiyuError(f"unknown fields: {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    if "channel_id" in changes and changes["channel_id"] != current.channel_id:
        raise SiyuError("a code's channel cannot change (its adds are attributed to it); make a new code", "channel_id")
    spec = CodeSpec(**{**current.__dict__, **changes})
    slots, fallback = _check(ctx, brand_id, spec)
    state = rules.make_state(code_id, spec.channel_id, spec.campaign, slots[0].guide_id if len(slots) == 1 else "")
    users, why = rules.rotation(slots, _adds_today(ctx, code_id, _today()), fallback)
    with ctx.sessions() as s:
        row = _row(s, brand_id, code_id)
        wtype, config_id = _way_type(row.guides, row.fallback), row.config_id
    if wtype == 1 and _way_type(slots, fallback) == 2:
        raise SiyuError(
            "a code made for one guide without a fallback cannot take more guides (WeCom's type 1); make a new code",
            "guides",
        )
    with wecom(ctx, brand_id, client) as c:
        c.update_contact_way(config_id, remark=spec.name.strip()[:30], state=state, user=users)
    with ctx.sessions() as s, s.begin():
        row = _row(s, brand_id, code_id)
        row.name, row.campaign, row.state = spec.name.strip(), spec.campaign, state
        row.guides = [{"guide_id": x.guide_id, "userid": x.userid, "cap": x.cap} for x in slots]
        row.fallback = {"guide_id": fallback.guide_id, "userid": fallback.userid} if fallback else None
        row.welcome, row.tag_channel, row.group_rules = spec.welcome or {}, int(spec.tag_channel), spec.group_rules
        if changes.get("group_rules") is not None:
            row.join_ways = {}  # rules changed: join codes are made again on the next add
        row.users, row.rotation, row.updated_at = users, why, utcnow()
        return public(row)


def delete_code(ctx: Context, brand_id: str, code_id: int, client: WeComClient | None = None) -> dict[str, Any]:
    """Delete the code in WeCom (del_contact_way; scanning it no longer adds) and mark it deleted (kept for its
    stats: the adds it brought stay attributed)."""
    with ctx.sessions() as s:
        row = _row(s, brand_id, code_id)
        config_id, status = row.config_id, row.status
    if status == "active":
        with wecom(ctx, brand_id, client) as c:
            try:
                c.del_contact_way(config_id)
            except WeComError as err:
                if err.errcode != 40058:  # already gone in WeCom: deleting here is still right
                    raise
    with ctx.sessions() as s, s.begin():
        row = _row(s, brand_id, code_id)
        row.status, row.updated_at = "deleted", utcnow()
        return public(row)


# -- attribution and rotation --------------------------------------------------------------------------------
def code_for_state(ctx: Context, brand_id: str, state: str) -> ChannelCodeRow | None:
    """The code a contact's state names (by the code number it carries; deleted codes still attribute)."""
    parsed = rules.parse_state(state or "")
    if parsed is None:
        return None
    with ctx.sessions() as s:
        row = s.get(ChannelCodeRow, parsed.code_no)
        if row is None or row.brand_id != brand_id or row.status == "creating":
            return None
        s.expunge(row)
        return row


def refresh_rotation(
    ctx: Context, brand_id: str, code_id: int, client: WeComClient | None = None, day: str | None = None
) -> tuple[list[str], str, bool]:
    """Point the code at the guides under their cap today (else the fallback); returns (userids, why, changed)."""
    with ctx.sessions() as s:
        row = _row(s, brand_id, code_id)
        slots, fallback = slots_of(row)
        current, config_id, status = list(row.users), row.config_id, row.status
    users, why = rules.rotation(slots, _adds_today(ctx, code_id, day or _today()), fallback)
    if users == current or status != "active":
        return current, why, False
    with wecom(ctx, brand_id, client) as c:
        c.update_contact_way(config_id, user=users)
    with ctx.sessions() as s, s.begin():
        row = _row(s, brand_id, code_id)
        row.users, row.rotation, row.updated_at = users, why, utcnow()
    log.info("channel code %s now shows %s (%s)", code_id, users, why)
    return users, why, True


def refresh_all(ctx: Context, brand_id: str) -> int:
    """Refresh every active code of the brand (run after midnight: yesterday's capped guides come back)."""
    changed = 0
    for code in list_codes(ctx, brand_id):
        if len(code["guides"]) > 1 or code["fallback"]:
            changed += refresh_rotation(ctx, brand_id, int(code["id"]))[2]
    return changed


def refresh_due(ctx: Context) -> int:
    """Every brand's codes re-pointed (the schedule ``wecom.codes.rotation``: after midnight capped guides come
    back); a brand whose WeCom is not reachable is logged and skipped."""
    with ctx.sessions() as s:
        brand_ids = list(s.scalars(select(ChannelCodeRow.brand_id).where(ChannelCodeRow.status == "active").distinct()))
    changed = 0
    for b in brand_ids:
        try:
            changed += refresh_all(ctx, b)
        except SiyuError as err:
            log.warning("channel codes of %s not re-pointed: %s", b, err)
    return changed


# -- QR image --------------------------------------------------------------------------------------------------
def qr_image(ctx: Context, brand_id: str, code_id: int, fmt: str = "png", scale: int = 8) -> bytes:
    """The code's QR image (its WeCom qr_code URL encoded), PNG or SVG; ``scale`` 1..40 pixels per module."""
    import segno

    if fmt not in QR_FORMATS:
        raise SiyuError(f"format must be one of {', '.join(QR_FORMATS)}", field="format")
    if not 1 <= scale <= 40:
        raise SiyuError("scale must be 1..40", field="scale")
    with ctx.sessions() as s:
        row = _row(s, brand_id, code_id)
        url = row.qr_code
    if not url:
        raise SiyuError(f"channel code {code_id} has no QR URL (made for a mini-program?)", field="code_id")
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind=fmt, scale=scale, border=2)
    return buf.getvalue()


def adds_log(
    ctx: Context, brand_id: str, code_id: int, guide_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The latest adds of a code with what onboarding did (welcome, tag, invite)."""
    with ctx.sessions() as s:
        _row(s, brand_id, code_id)
        q = select(ChannelCodeAddRow).where(ChannelCodeAddRow.code_id == code_id)
        if guide_id is not None:
            q = q.where(ChannelCodeAddRow.guide_id == guide_id)
        rows = s.scalars(q.order_by(ChannelCodeAddRow.id.desc()).limit(max(1, min(limit, 1000)))).all()
        return [
            {
                "id": r.id,
                "ref": r.ref,
                "guide_id": r.guide_id,
                "external_userid": r.external_userid,
                "create_time": r.create_time,
                "day": r.day,
                "welcome": r.welcome,
                "welcome_detail": r.welcome_detail,
                "welcome_text": r.welcome_text,
                "tag": r.tag,
                "invite": r.invite,
                "invite_detail": r.invite_detail,
            }
            for r in rows
        ]


def attributed_pairs(ctx: Context, brand_id: str, code_id: int) -> list[tuple[str, str]]:
    """(external_userid, guide_id) of every add the code brought."""
    with ctx.sessions() as s:
        return [
            (str(e), str(g))
            for e, g in s.execute(
                select(ChannelCodeAddRow.external_userid, ChannelCodeAddRow.guide_id)
                .where(ChannelCodeAddRow.brand_id == brand_id, ChannelCodeAddRow.code_id == code_id)
                .distinct()
            ).all()
        ]


def stats(ctx: Context, brand_id: str, code_id: int, guide_id: str | None = None, days: int = 30) -> dict[str, Any]:
    """Adds, losses (customer deleted / guide deleted), net — in total, per guide and per day (the last ``days``),
    from the warehouse relations of the contacts the code brought (scans are not visible in WeCom)."""
    from siyu.analytics import channel_codes as a

    if not 1 <= days <= 366:
        raise SiyuError("days must be 1..366", field="days")
    code = get_code(ctx, brand_id, code_id, guide_id)
    pairs = attributed_pairs(ctx, brand_id, code_id)
    if guide_id is not None:
        pairs = [p for p in pairs if p[1] == guide_id]
    rel = ctx.warehouse.table("relations")
    totals, by_guide, by_day = a.code_stats(rel, brand_id, pairs, days)
    return {
        "code": {"id": code["id"], "name": code["name"], "channel_id": code["channel_id"]},
        **totals,
        "guides": by_guide,
        "days": by_day,
    }
