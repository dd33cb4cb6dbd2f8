"""`siyu rewards ...` (catalogue, stock, grants, claw-back, redeem, fulfilment, engagement activities, tiers) and
`siyu points ...` (balance, ledger, earn, spend, expire). Rich tables; ``--json`` for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.display import display_value
from siyu.services import engagement, rewards
from siyu.services.errors import SiyuError
from siyu.services.rewards import points as points_service

app = typer.Typer(
    help="Rewards, stock, grants, fulfilment, lottery / check-in / quiz, tiers. 奖品与互动", no_args_is_help=True
)
points_app = typer.Typer(help="Points ledger: balance, ledger, earn, spend, expire. 积分", no_args_is_help=True)
BRAND = typer.Option(..., "--brand", help="brand id")
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    table = Table(title=title, title_justify="left")
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(display_value(r.get(c)) for c in cols))
    console.print(table)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SiyuError(f"--file: {file} is not a readable JSON file ({exc})", "file") from None


def _show(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        _print_json(data)
        return
    _table(title, [{"field": k, "value": v} for k, v in data.items()], ["field", "value"])


REWARD_COLS = ["id", "name", "kind", "status", "stock_left", "stock_total", "granted", "unit_cost", "cost_spent"]
GRANT_COLS = ["grant_id", "reward_id", "customer_id", "status", "code", "cost", "source", "source_ref", "created_at"]


@app.command("list")
def list_cmd(brand: str = BRAND, kind: str | None = None, as_json: bool = JSON_OUT) -> None:
    """List rewards with stock and cost."""
    with open_context() as ctx:
        items = rewards.list_rewards(ctx, cli_user(ctx, brand).brand_id, kind)
        _print_json(items) if as_json else _table("rewards 奖品", items, REWARD_COLS)


@app.command()
def create(
    brand: str = BRAND, file: Path = typer.Option(..., help="JSON: {name, kind, config, ...}"), as_json: bool = JSON_OUT
) -> None:
    """Create a reward from a JSON file."""
    with open_context() as ctx:
        out = rewards.create_reward(ctx, cli_user(ctx, brand).brand_id, _read_json(file), created_by="cli")
        _show(out, as_json, "reward created 已创建")


@app.command()
def show(reward_id: str, brand: str = BRAND, as_json: bool = JSON_OUT) -> None:
    """Show one reward."""
    with open_context() as ctx:
        _show(rewards.require_reward(ctx, cli_user(ctx, brand).brand_id, reward_id), as_json, "reward 奖品")


@app.command("top-up")
def top_up(reward_id: str, amount: int, brand: str = BRAND, as_json: bool = JSON_OUT) -> None:
    """Add stock to a reward."""
    with open_context() as ctx:
        _show(rewards.top_up(ctx, cli_user(ctx, brand).brand_id, reward_id, amount), as_json, "stock 库存")


@app.command("grant")
def grant_cmd(
    reward_id: str,
    customer_id: str,
    brand: str = BRAND,
    key: str = typer.Option(..., "--key", help="idempotency key (same key → same grant)"),
    source: str = "manual",
    source_ref: str = "",
    as_json: bool = JSON_OUT,
) -> None:
    """Grant one unit of a reward to a customer."""
    with open_context() as ctx:
        out = rewards.grant(
            ctx,
            cli_user(ctx, brand).brand_id,
            reward_id,
            customer_id,
            source=source,
            source_ref=source_ref,
            idempotency_key=key,
        )
        _show(out, as_json, "grant 发放")


@app.command("claw-back")
def claw_back(
    grant_id: str, reason: str = typer.Option(..., help="why"), brand: str = BRAND, as_json: bool = JSON_OUT
) -> None:
    """Take a grant back."""
    with open_context() as ctx:
        _show(rewards.claw_back(ctx, cli_user(ctx, brand).brand_id, grant_id, reason), as_json, "clawed back 已收回")


@app.command()
def redeem(
    code: str,
    order_id: str,
    brand: str = BRAND,
    amount: float = typer.Option(0.0, help="order amount"),
    as_json: bool = JSON_OUT,
) -> None:
    """Use a coupon on an order."""
    with open_context() as ctx:
        out = rewards.redeem(ctx, cli_user(ctx, brand).brand_id, code=code, order_id=order_id, order_amount=amount)
        _show(out, as_json, "redeemed 已核销")


@app.command()
def grants(
    brand: str = BRAND,
    reward_id: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    source: str | None = None,
    limit: int = 50,
    as_guide: str | None = typer.Option(None, help="see only this guide's customers"),
    as_json: bool = JSON_OUT,
) -> None:
    """List grants (newest first)."""
    from siyu.services.customers import guide_scope
    from siyu.services.metrics import fetch_arrow

    with open_context() as ctx:
        user = cli_user(ctx, brand, as_guide)
        scope = guide_scope(ctx, user)
        ids = {r["customer_id"] for r in fetch_arrow(ctx, scope).to_pylist()} if scope is not None else None
        page = rewards.list_grants(
            ctx,
            user.brand_id,
            reward_id=reward_id,
            customer_id=customer_id,
            status=status,
            source=source,
            customer_ids=ids,
            limit=limit,
        )
        _print_json(page) if as_json else _table(f"grants 发放记录 ({page['total']})", page["items"], GRANT_COLS)


@app.command()
def fulfilment(brand: str = BRAND, status: str | None = None, limit: int = 100, as_json: bool = JSON_OUT) -> None:
    """Physical gifts to fulfil (awaiting_address / to_ship / shipped)."""
    with open_context() as ctx:
        page = rewards.list_grants(ctx, cli_user(ctx, brand).brand_id, kind="physical", status=status, limit=limit)
        rows = [{**g, "address": " ".join(str(v) for v in (g["address"] or {}).values())} for g in page["items"]]
        cols = ["grant_id", "reward_id", "customer_id", "status", "address", "tracking_no"]
        _print_json(page) if as_json else _table(f"fulfilment 实物发货 ({page['total']})", rows, cols)


@app.command()
def ship(grant_id: str, carrier: str, tracking_no: str, brand: str = BRAND, as_json: bool = JSON_OUT) -> None:
    """Mark a physical gift shipped."""
    with open_context() as ctx:
        out = rewards.mark_shipped(ctx, cli_user(ctx, brand).brand_id, grant_id, carrier, tracking_no)
        _show(out, as_json, "shipped 已发货")


@app.command()
def cost(source: str, brand: str = BRAND, source_ref: str | None = None) -> None:
    """Reward cost of a source (campaign ROI); clawed-back grants excluded."""
    with open_context() as ctx:
        console.print(f"{rewards.reward_cost(ctx, cli_user(ctx, brand).brand_id, source, source_ref):.2f}")


@app.command("activity-create")
def activity_create(
    brand: str = BRAND,
    file: Path = typer.Option(..., help="JSON: {kind: lottery|checkin|quiz, name, config, id?}"),
    as_json: bool = JSON_OUT,
) -> None:
    """Create a lottery / check-in / quiz."""
    with open_context() as ctx:
        d = _read_json(file)
        if not isinstance(d, dict):
            raise SiyuError("--file: the activity is a JSON object", "file")
        out = engagement.create_activity(
            ctx,
            cli_user(ctx, brand).brand_id,
            str(d.get("kind", "")),
            str(d.get("name", "")),
            d.get("config") or {},
            starts_at=d.get("starts_at"),
            ends_at=d.get("ends_at"),
            activity_id=d.get("id"),
            created_by="cli",
        )
        _show(out, as_json, "activity 互动活动")


@app.command()
def activities(brand: str = BRAND, kind: str | None = None, as_json: bool = JSON_OUT) -> None:
    """List lotteries, check-ins and quizzes."""
    with open_context() as ctx:
        items = engagement.list_activities(ctx, cli_user(ctx, brand).brand_id, kind)
        _print_json(items) if as_json else _table(
            "activities 互动活动", items, ["id", "kind", "name", "status", "created_at"]
        )


@app.command("lottery-stats")
def lottery_stats(activity_id: str, brand: str = BRAND, as_json: bool = JSON_OUT) -> None:
    """Draws per prize, configured odds next to the observed share."""
    with open_context() as ctx:
        st = engagement.lottery_stats(ctx, cli_user(ctx, brand).brand_id, activity_id)
        if as_json:
            _print_json(st)
            return
        _table(f"lottery 抽奖 ({st['draws']} draws)", st["prizes"], ["key", "name", "probability", "won", "share"])


@app.command("tiers-recompute")
def tiers_recompute(brand: str = BRAND, as_json: bool = JSON_OUT) -> None:
    """Recompute member tiers now."""
    with open_context() as ctx:
        out = engagement.recompute(ctx, cli_user(ctx, brand).brand_id)
        if as_json:
            _print_json(out)
            return
        console.print(f"members {out['members']} · upgraded {out['upgraded']} · downgraded {out['downgraded']}")
        _table(
            "tiers 会员等级",
            [{"tier": k, "members": v} for k, v in engagement.tier_counts(ctx, brand).items()],
            ["tier", "members"],
        )


# ---- points -------------------------------------------------------------------------------------------------


@points_app.command()
def balance(customer_id: str, brand: str = BRAND, as_json: bool = JSON_OUT) -> None:
    """A customer's balance (sum of the ledger)."""
    with open_context() as ctx:
        _show(points_service.balance(ctx, cli_user(ctx, brand).brand_id, customer_id), as_json, "points 积分")


@points_app.command()
def ledger(customer_id: str, brand: str = BRAND, limit: int = 50, as_json: bool = JSON_OUT) -> None:
    """A customer's ledger entries, newest first."""
    with open_context() as ctx:
        items = points_service.ledger(ctx, cli_user(ctx, brand).brand_id, customer_id, limit)
        cols = ["id", "kind", "delta", "remaining", "expires_at", "source", "ref", "created_at"]
        _print_json(items) if as_json else _table("ledger 积分流水", items, cols)


@points_app.command()
def earn(
    customer_id: str,
    amount: int,
    brand: str = BRAND,
    source: str = "manual",
    ref: str = "",
    valid_days: int = 365,
    key: str | None = None,
    as_json: bool = JSON_OUT,
) -> None:
    """Credit points (a lot expiring after --valid-days)."""
    with open_context() as ctx:
        out = points_service.earn(
            ctx,
            cli_user(ctx, brand).brand_id,
            customer_id,
            amount,
            source=source,
            ref=ref,
            valid_days=valid_days,
            key=key,
        )
        _show(out, as_json, "earned 已入账")


@points_app.command()
def spend(
    customer_id: str,
    amount: int,
    brand: str = BRAND,
    source: str = "manual",
    ref: str = "",
    key: str | None = None,
    as_json: bool = JSON_OUT,
) -> None:
    """Debit points FIFO by lot (fails when the balance is short)."""
    with open_context() as ctx:
        out = points_service.spend(
            ctx, cli_user(ctx, brand).brand_id, customer_id, amount, source=source, ref=ref, key=key
        )
        _show(out, as_json, "spent 已扣减")


@points_app.command()
def expire(brand: str = BRAND) -> None:
    """Expire every lot past its date now."""
    with open_context() as ctx:
        console.print(f"expired {points_service.expire_due(ctx, cli_user(ctx, brand).brand_id)} points")
