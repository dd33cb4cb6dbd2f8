"""The reward catalogue: create / update / list rewards, stock top-up, activate / deactivate, code pools."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.rewards import MAX_STOCK, check_codes, parse_spec
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.stores.state.engagement_models import RewardCodeRow, RewardRow
from siyu.stores.state.models import utcnow

STATUSES = ("active", "inactive")
MAX_PAGE = 500


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


CODE_LIST = "code_list"  # marker in the stored config: the codes live in reward_codes


def uses_code_list(row: RewardRow) -> bool:
    """True when the reward hands out codes from its pool (reward_codes) rather than generated codes / a link."""
    return bool((row.config or {}).get(CODE_LIST))


def _stored(config: Any, has_codes: bool) -> dict[str, Any]:
    out: dict[str, Any] = config.model_dump(mode="json", exclude={"codes"})
    if has_codes:
        out[CODE_LIST] = True
    return out


def _validated(row: RewardRow) -> dict[str, Any]:
    """The stored config in the shape the kind's model validates (codes list stood in by one dummy code)."""
    config = {k: v for k, v in (row.config or {}).items() if k != CODE_LIST}
    if uses_code_list(row):
        config["codes"] = ["CODE"]
    return config


def reward_dict(row: RewardRow, free_codes: int | None = None) -> dict[str, Any]:
    """A reward as JSON; ``codes_free`` = codes not handed out yet (when asked for)."""
    config = dict(row.config or {})
    out: dict[str, Any] = {
        "id": row.id,
        "reward_id": row.id,
        "brand_id": row.brand_id,
        "name": row.name,
        "kind": row.kind,
        "config": config,
        "unit_cost": row.unit_cost,
        "stock_total": row.stock_total,
        "stock_left": row.stock_left,
        "budget": row.budget,
        "cost_spent": round(row.cost_spent, 6),
        "granted": row.granted,
        "return_stock_on_clawback": row.return_stock,
        "status": row.status,
        "valid_until": _iso(row.valid_until),
        "created_by": row.created_by,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    if free_codes is not None and uses_code_list(row):
        out["codes_free"] = free_codes
    return out


def _new_id() -> str:
    return "rw_" + secrets.token_hex(6)


def _check_id(reward_id: str) -> None:
    ok = 1 <= len(reward_id) <= 64 and all(c.isalnum() or c in "_-" for c in reward_id) and reward_id.isascii()
    if not ok:
        raise SiyuError(f"id: {reward_id!r} is not a reward id; use 1-64 letters, digits, - or _", "id")


def create_reward(ctx: Context, brand_id: str, data: dict[str, Any], created_by: str = "") -> dict[str, Any]:
    """Create a reward from ``{name, kind, config, unit_cost, stock, budget, valid_until, id?}``.

    A code list (``config.codes``) fills the code pool; with no ``stock`` given the stock is the number of
    codes (a link-only virtual good, points, a generated-code coupon or a physical gift without ``stock`` are
    unlimited)."""
    data = dict(data)
    reward_id = str(data.pop("id", "") or "") or _new_id()
    _check_id(reward_id)
    spec, config = parse_spec(data)
    codes: list[str] = list(getattr(config, "codes", []) or [])
    stock = spec.stock if spec.stock is not None else (len(codes) if codes else None)
    row = RewardRow(
        id=reward_id,
        brand_id=brand_id,
        name=spec.name,
        kind=spec.kind,
        config=_stored(config, bool(codes)),
        unit_cost=spec.unit_cost,
        stock_total=stock,
        stock_left=stock,
        budget=spec.budget,
        cost_spent=0.0,
        granted=0,
        return_stock=spec.return_stock_on_clawback and not codes,
        status="active",
        valid_until=spec.valid_until.replace(tzinfo=None) if spec.valid_until else None,
        created_by=created_by,
    )
    with ctx.sessions() as s:
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict(f"a reward with id {reward_id!r} already exists; pick another id", "id") from None
        if codes:
            s.execute(
                insert(RewardCodeRow),
                [{"brand_id": brand_id, "reward_id": reward_id, "code": c, "created_at": utcnow()} for c in codes],
            )
        s.commit()
    return reward_dict(row, len(codes) if codes else None)


def _row(s: Any, brand_id: str, reward_id: str) -> RewardRow:
    row = s.get(RewardRow, reward_id)
    if row is None or row.brand_id != brand_id or row.status == "deleted":
        raise NotFound(f"reward {reward_id!r} not found", "reward_id")
    return row  # type: ignore[no-any-return]


def _free_codes(s: Any, reward_id: str) -> int:
    q = select(func.count()).where(RewardCodeRow.reward_id == reward_id, RewardCodeRow.grant_id.is_(None))
    return int(s.scalar(q) or 0)


def get_reward(ctx: Context, brand_id: str, reward_id: str) -> dict[str, Any] | None:
    """The reward as a dict, or None when the brand has no such reward."""
    with ctx.sessions() as s:
        row = s.get(RewardRow, reward_id)
        if row is None or row.brand_id != brand_id or row.status == "deleted":
            return None
        return reward_dict(row, _free_codes(s, reward_id))


def require_reward(ctx: Context, brand_id: str, reward_id: str) -> dict[str, Any]:
    """The reward, or NotFound."""
    found = get_reward(ctx, brand_id, reward_id)
    if found is None:
        raise NotFound(f"reward {reward_id!r} not found", "reward_id")
    return found


def list_rewards(
    ctx: Context, brand_id: str, kind: str | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The brand's rewards, newest first (deleted ones left out)."""
    if not 1 <= limit <= MAX_PAGE:
        raise SiyuError(f"limit must be between 1 and {MAX_PAGE}", "limit")
    q = select(RewardRow).where(RewardRow.brand_id == brand_id, RewardRow.status != "deleted")
    if kind:
        q = q.where(RewardRow.kind == kind)
    if status:
        q = q.where(RewardRow.status == status)
    with ctx.sessions() as s:
        rows = s.scalars(q.order_by(RewardRow.created_at.desc(), RewardRow.id).limit(limit)).all()
        return [reward_dict(r) for r in rows]


def update_reward(ctx: Context, brand_id: str, reward_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change name, unit_cost (future grants), budget, valid_until, status or the kind's config (not the kind
    nor the code list: add codes with ``add_codes``, stock with ``top_up``)."""
    allowed = {"name", "unit_cost", "budget", "valid_until", "status", "config", "return_stock_on_clawback"}
    unknown = set(changes) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise SiyuError(f"field {name!r} cannot be changed; change one of {', '.join(sorted(allowed))}", name or "body")
    with ctx.sessions() as s:
        row = _row(s, brand_id, reward_id)
        merged = {
            "name": changes.get("name", row.name),
            "kind": row.kind,
            "config": _validated(row),
            "unit_cost": changes.get("unit_cost", row.unit_cost),
            "budget": changes.get("budget", row.budget),
            "valid_until": changes.get("valid_until", row.valid_until),
        }
        if "config" in changes:
            new_config = {k: v for k, v in dict(changes["config"] or {}).items() if k != CODE_LIST}
            if new_config.get("codes"):
                raise SiyuError("config.codes: add codes with the add-codes action, not by editing", "config.codes")
            new_config.pop("codes", None)
            if uses_code_list(row):
                new_config["codes"] = ["CODE"]
            merged["config"] = new_config
        spec, config = parse_spec(merged)
        status = changes.get("status", row.status)
        if status not in STATUSES:
            raise SiyuError(f"status: use one of {', '.join(STATUSES)}", "status")
        row.name, row.unit_cost, row.budget = spec.name, spec.unit_cost, spec.budget
        row.valid_until = spec.valid_until.replace(tzinfo=None) if spec.valid_until else None
        row.config = _stored(config, uses_code_list(row))
        row.status = status
        if "return_stock_on_clawback" in changes:
            row.return_stock = bool(changes["return_stock_on_clawback"]) and not uses_code_list(row)
        row.updated_at = utcnow()
        s.commit()
        return reward_dict(row, _free_codes(s, reward_id))


def delete_reward(ctx: Context, brand_id: str, reward_id: str) -> None:
    """Hide a reward (its grants stay for the audit trail); it can no longer be granted."""
    with ctx.sessions() as s:
        row = _row(s, brand_id, reward_id)
        row.status, row.updated_at = "deleted", utcnow()
        s.commit()


def top_up(ctx: Context, brand_id: str, reward_id: str, amount: int) -> dict[str, Any]:
    """Add ``amount`` to the stock (atomic; a reward without a stock limit cannot be topped up). Rewards with
    a code list get stock only with new codes (``add_codes``)."""
    if not isinstance(amount, int) or not 1 <= amount <= MAX_STOCK:
        raise SiyuError(f"amount must be a whole number between 1 and {MAX_STOCK}", "amount")
    with ctx.sessions() as s:
        row = _row(s, brand_id, reward_id)
        if row.stock_left is None:
            raise Conflict(f"reward {reward_id!r} has no stock limit; nothing to top up", "amount")
        if uses_code_list(row):
            raise Conflict(f"reward {reward_id!r} hands out codes from a list; add codes instead", "amount")
        s.execute(
            update(RewardRow)
            .where(RewardRow.id == reward_id)
            .values(
                stock_left=RewardRow.stock_left + amount,
                stock_total=RewardRow.stock_total + amount,
                updated_at=utcnow(),
            )
        )
        s.commit()
        s.refresh(row)
        return reward_dict(row)


def add_codes(ctx: Context, brand_id: str, reward_id: str, codes: list[str]) -> dict[str, Any]:
    """Add codes to a code-list reward; its stock grows by their number."""
    check_codes(codes)
    if not codes:
        raise SiyuError("codes: give at least one code", "codes")
    with ctx.sessions() as s:
        row = _row(s, brand_id, reward_id)
        if not uses_code_list(row):
            raise Conflict(f"reward {reward_id!r} does not use a code list", "codes")
        dup = s.scalars(
            select(RewardCodeRow.code).where(RewardCodeRow.reward_id == reward_id, RewardCodeRow.code.in_(codes))
        ).first()
        if dup:
            raise SiyuError(f"codes: {dup!r} is already in the list", "codes")
        s.execute(
            update(RewardRow)
            .where(RewardRow.id == reward_id)
            .values(
                stock_left=RewardRow.stock_left + len(codes),
                stock_total=RewardRow.stock_total + len(codes),
                updated_at=utcnow(),
            )
        )
        s.execute(
            insert(RewardCodeRow),
            [{"brand_id": brand_id, "reward_id": reward_id, "code": c, "created_at": utcnow()} for c in codes],
        )
        s.commit()
        s.refresh(row)
        return reward_dict(row, _free_codes(s, reward_id))
