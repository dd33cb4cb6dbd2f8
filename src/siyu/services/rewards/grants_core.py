"""A grant written with prebuilt Core statements on the caller's connection, for hot paths that already hold a
transaction (the campaign help writer's batch): the same conditional stock decrement and idempotency key as
``grants.grant``, three statements, no ORM objects — on SQLite straight on ``sqlite3`` (``driver_sql``).

Generated coupon codes, virtual links and physical gifts only: a reward that hands out codes from a list or
grants points needs the ledger / code pool, so ``grant_in`` raises ``NeedsFullGrant`` (after its decrement —
the caller undoes its savepoint and calls ``grants.grant``). A duplicate idempotency key raises the
IntegrityError of the unique key (the caller's savepoint undoes the decrement with it).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, or_, select, update

from siyu.domain.rewards import expiry, generate_code
from siyu.services.rewards.catalog import CODE_LIST
from siyu.services.rewards.grants import COST_EPS, why_unavailable
from siyu.stores.state.driver_sql import Prepared
from siyu.stores.state.engagement_models import RewardGrantRow, RewardRow

_R: Table = RewardRow.__table__  # type: ignore[assignment]
_G: Table = RewardGrantRow.__table__  # type: ignore[assignment]
_INSERT_GRANT = Prepared(_G.insert())


class NeedsFullGrant(Exception):
    """The reward needs ``grants.grant`` (code list or points); undo the savepoint holding the decrement."""


def _decrement() -> Any:
    """The conditional decrement of ``grants.grant`` (stock, budget, active, not expired), returning what the
    grant row needs."""
    c = _R.c
    return (
        update(_R)
        .where(
            c.id == bindparam("rid"),
            c.brand_id == bindparam("bid"),
            c.status == "active",
            or_(c.stock_left.is_(None), c.stock_left > 0),
            or_(c.budget.is_(None), c.cost_spent + c.unit_cost <= c.budget + COST_EPS),
            or_(c.valid_until.is_(None), c.valid_until > bindparam("now")),
        )
        .values(
            stock_left=c.stock_left - 1,
            cost_spent=c.cost_spent + c.unit_cost,
            granted=c.granted + 1,
            updated_at=bindparam("now"),
        )
        .returning(c.kind, c.config, c.unit_cost, c.name)
    )


_DECREMENT = Prepared(_decrement())
_WHY = Prepared(
    select(
        _R.c.brand_id,
        _R.c.status,
        _R.c.name,
        _R.c.valid_until,
        _R.c.stock_left,
        _R.c.budget,
        _R.c.cost_spent,
        _R.c.unit_cost,
    ).where(_R.c.id == bindparam("rid"))
)


def grant_in(
    con: Connection,
    brand_id: str,
    reward_id: str,
    customer_id: str,
    *,
    source: str,
    source_ref: str,
    idempotency_key: str,
    now: datetime,
) -> dict[str, Any]:
    """Grant one unit inside ``con``'s transaction (run it in a savepoint); returns ``{grant_id, status, cost,
    code, value}``. Raises ``RewardUnavailable`` (nothing written), ``NeedsFullGrant`` or the key's
    IntegrityError (undo the savepoint)."""
    got = _DECREMENT.first(con, {"rid": reward_id, "bid": brand_id, "now": now})
    if got is None:
        row = _WHY.first(con, {"rid": reward_id})
        raise why_unavailable(row, brand_id, reward_id, now)
    kind, config, unit_cost, _name = got
    config = dict(config or {})
    if config.get(CODE_LIST) or kind == "points":
        raise NeedsFullGrant(reward_id)
    gid = "gr_" + secrets.token_hex(8)
    code, status = "", "issued"
    value: dict[str, Any] = {}
    if kind == "coupon":
        code = generate_code(str(config.get("code_prefix") or "C"))
        value = {"face_value": config.get("face_value"), "min_spend": config.get("min_spend", 0)}
    elif kind == "virtual":
        value = {"link": config.get("link", "")}
    elif kind == "physical":
        status = "awaiting_address"
        value = {"sku": config.get("sku", ""), "description": config.get("description", "")}
    _INSERT_GRANT.rowcount(
        con,
        {
            "id": gid,
            "brand_id": brand_id,
            "reward_id": reward_id,
            "kind": kind,
            "customer_id": customer_id,
            "source": source,
            "source_ref": source_ref,
            "idempotency_key": idempotency_key,
            "status": status,
            "cost": unit_cost,
            "code": code,
            "value": value,
            "expires_at": expiry(kind, config, now),
            "address": None,
            "shipping_carrier": "",
            "tracking_no": "",
            "order_id": "",
            "reason": "",
            "created_at": now,
            "updated_at": now,
        },
    )
    return {"grant_id": gid, "status": status, "cost": float(unit_cost or 0), "code": code, "value": value}
