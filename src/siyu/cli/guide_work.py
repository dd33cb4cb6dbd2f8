"""`siyu followups|moments|pool|guide-kpis ...`: the guide workspace from the command line (Rich tables, --json).

Commands act as a brand admin, or as a guide with ``--as-guide g01`` (then the guide's own customers only).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.services.guide_work import followups, inbox, kpis, moments, pool
from siyu.services.guide_work import settings as gw

followups_app = typer.Typer(
    help="Follow-ups (跟进记录), sales stages, reminders, workspace settings", no_args_is_help=True
)
moments_app = typer.Typer(help="Moments (朋友圈) tasks through WeCom: publish, track who posted", no_args_is_help=True)
pool_app = typer.Typer(help="Customer pool (公海): add, assign, claim, release, return, move log", no_args_is_help=True)
kpis_app = typer.Typer(help="Guide scorecard, targets and inbox", no_args_is_help=True)
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")
AS_GUIDE = typer.Option(None, "--as-guide", help="act as this guide (their own customers only)")


def _json(data: Any) -> None:
    def default(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date | datetime) else str(v)

    console.print_json(json.dumps(data, ensure_ascii=False, default=default))


def _table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    t = Table(title=title, title_justify="left")
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*["—" if r.get(c) is None else str(r.get(c)) for c in cols])
    console.print(t)


# -- followups -------------------------------------------------------------------------------------------------
@followups_app.command("add")
def followup_add(
    brand: str,
    customer_id: str,
    kind: str = typer.Option(..., help="call | visit | message | other"),
    content: str = typer.Option("", help="what was said or done"),
    next_at: str = typer.Option(None, "--next", help="next follow-up: YYYY-MM-DD or YYYY-MM-DDTHH:MM (local)"),
    stage: str = typer.Option(None, help="move the customer to this sales stage"),
    as_guide: str = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """Record a follow-up."""
    with open_context() as ctx:
        out = followups.record(ctx, cli_user(ctx, brand, as_guide), customer_id, kind, content, next_at, stage)
    _json(out) if as_json else console.print(f"follow-up {out['id']} recorded (reminder: {out['reminder']})")


@followups_app.command("list")
def followup_list(
    brand: str, customer_id: str = typer.Option(None), as_guide: str = AS_GUIDE, as_json: bool = JSON_OUT
) -> None:
    """Follow-ups newest first."""
    with open_context() as ctx:
        out = followups.list_followups(ctx, cli_user(ctx, brand, as_guide), customer_id, 1, 200)
    if as_json:
        return _json(out)
    _table(
        f"follow-ups 跟进记录 ({out['total']})",
        out["items"],
        ["id", "customer_id", "guide_id", "kind", "content", "stage", "next_at", "reminder", "created_at"],
    )
    return None


@followups_app.command("stages")
def followup_stages(brand: str, as_guide: str = AS_GUIDE, as_json: bool = JSON_OUT) -> None:
    """Customers per sales stage."""
    with open_context() as ctx:
        out = followups.stage_counts(ctx, cli_user(ctx, brand, as_guide))
    _json(out) if as_json else _table("sales stages 销售阶段", out["stages"], ["stage", "customers"])


@followups_app.command("settings")
def followup_settings(
    brand: str,
    stages: str = typer.Option(None, help="comma-separated sales stages, in order"),
    claim_limit: int = typer.Option(None, help="pool leads a guide may claim per day"),
    return_days: int = typer.Option(None, help="days without a follow-up before a lead returns to the pool"),
    windows: str = typer.Option(None, help="comma-separated Moments posting windows, e.g. 21:00-22:00,06:00-07:00"),
    as_json: bool = JSON_OUT,
) -> None:
    """Show or change the guide workspace settings."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        if any(v is not None for v in (stages, claim_limit, return_days, windows)):
            out = gw.set_settings(
                ctx,
                user,
                stages.split(",") if stages else None,
                claim_limit,
                return_days,
                windows.split(",") if windows else None,
            ).as_dict()
        else:
            out = gw.get_settings(ctx, brand).as_dict()
    _json(out) if as_json else _table("settings 设置", [{k: str(v) for k, v in out.items()}], list(out))


@followups_app.command("digest")
def followup_digest(brand: str) -> None:
    """Write today's reminder digests now (the daily job does this)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        console.print(followups.daily_digests(ctx))


# -- moments ---------------------------------------------------------------------------------------------------
@moments_app.command("publish")
def moment_publish(
    brand: str,
    title: str = typer.Option(...),
    content: str = typer.Option(""),
    image: list[str] = typer.Option([], help="media_id of an image (repeat for several)"),
    link: str = typer.Option(None, help="a link URL to attach"),
    guide: list[str] = typer.Option([], help="target guide_id (repeat); default every guide on WeCom"),
    segment: str = typer.Option(None, help="target the guides of this segment's customers"),
    tag: list[str] = typer.Option([], help="WeCom corp tag id the Moment is visible to (repeat)"),
    as_json: bool = JSON_OUT,
) -> None:
    """Publish a Moments task through WeCom."""
    from siyu.services.wecom.config import client_for, get_config

    att: list[dict[str, Any]] = [{"type": "image", "media_id": m} for m in image]
    if link:
        att.append({"type": "link", "url": link, "title": title})
    with open_context() as ctx:
        client = client_for(get_config(ctx, brand))
        try:
            out = moments.publish(
                ctx, cli_user(ctx, brand), client, title, content, att, guide or None, segment, tag or None
            )
        finally:
            client.close()
    _json(out) if as_json else _show(out)


def _show(t: dict[str, Any]) -> None:
    console.print(
        f"{t['id']} {t['title']}: {t['status']} moment {t['moment_id'] or '—'} "
        f"done {t['done']}/{t['targets']} suggested {', '.join(t['suggested_times'])}"
    )
    _table("guides 导购", t["guides"], ["guide_id", "userid", "status", "done_at"])


@moments_app.command("list")
def moment_list(brand: str, as_guide: str = AS_GUIDE, as_json: bool = JSON_OUT) -> None:
    """Moments tasks newest first with completion."""
    with open_context() as ctx:
        out = moments.list_tasks(ctx, cli_user(ctx, brand, as_guide))
    if as_json:
        return _json(out)
    _table("Moments tasks 朋友圈任务", out, ["id", "title", "status", "targets", "done", "completion", "created_at"])
    return None


@moments_app.command("poll")
def moment_poll(brand: str) -> None:
    """Read who posted from WeCom now (the scheduled poll does this every 15 minutes)."""
    from siyu.services.wecom.config import client_for, get_config

    with open_context() as ctx:
        cli_user(ctx, brand)
        client = client_for(get_config(ctx, brand))
        try:
            console.print(moments.poll_brand(ctx, brand, client))
        finally:
            client.close()


# -- pool ------------------------------------------------------------------------------------------------------
@pool_app.command("list")
def pool_list(
    brand: str,
    status: str = typer.Option("pool", help="pool | owned | all"),
    as_guide: str = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """Leads by status with open leads per guide."""
    with open_context() as ctx:
        out = pool.list_leads(ctx, cli_user(ctx, brand, as_guide), status, None, 1, pool.MAX_PAGE_SIZE)
    if as_json:
        return _json(out)
    _table(
        f"leads 线索 ({out['total']})",
        out["items"],
        ["customer_id", "status", "owner_guide_id", "source", "store_id", "region", "entered_at", "worked_at"],
    )
    _table(
        "open leads per guide 每位导购的线索",
        [{"guide_id": g, "leads": n} for g, n in out["loads"].items()],
        ["guide_id", "leads"],
    )
    return None


@pool_app.command("add")
def pool_add(
    brand: str,
    customer_ids: list[str] = typer.Argument(None),
    unowned: bool = typer.Option(False, "--unowned", help="add every customer without an active WeCom relation"),
    source: str = typer.Option("import", help="import | form | campaign | manual"),
    as_json: bool = JSON_OUT,
) -> None:
    """Put leads in the pool."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        out = pool.add_unowned(ctx, user, source) if unowned else pool.add(ctx, user, customer_ids or [], source)
    _json(out) if as_json else console.print(f"added {out['added']}, skipped {len(out['skipped'])}")


@pool_app.command("assign")
def pool_assign(
    brand: str,
    rule: str = typer.Option("round_robin", help="round_robin | store | region | load"),
    guide: list[str] = typer.Option([], help="only these guides (repeat)"),
    as_json: bool = JSON_OUT,
) -> None:
    """Assign every lead in the pool by a rule."""
    with open_context() as ctx:
        out = pool.assign(ctx, cli_user(ctx, brand), rule, None, guide or None)
    _json(out) if as_json else console.print(
        f"assigned {out['assigned']} ({out['by_guide']}); left in the pool {len(out['unassigned'])}"
    )


@pool_app.command("claim")
def pool_claim(brand: str, customer_ids: list[str], as_guide: str = typer.Option(..., "--as-guide")) -> None:
    """Claim leads as a guide (daily limit applies)."""
    with open_context() as ctx:
        out = pool.claim(ctx, cli_user(ctx, brand, as_guide), customer_ids)
    console.print(f"claimed {out['claimed']} ({out['claimed_today']}/{out['limit']} today)")


@pool_app.command("release")
def pool_release(brand: str, customer_id: str, reason: str = typer.Option(...), as_guide: str = AS_GUIDE) -> None:
    """Put a lead back in the pool, with a reason."""
    with open_context() as ctx:
        pool.release(ctx, cli_user(ctx, brand, as_guide), customer_id, reason)
    console.print(f"{customer_id} is back in the pool")


@pool_app.command("return-unworked")
def pool_return(brand: str) -> None:
    """Return leads without a follow-up in the brand's return_days now (the daily job does this)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        console.print(pool.return_unworked(ctx))


@pool_app.command("moves")
def pool_moves(brand: str, customer_id: str = typer.Option(None), as_json: bool = JSON_OUT) -> None:
    """The move log (who, when, why), newest first."""
    with open_context() as ctx:
        out = pool.moves(ctx, cli_user(ctx, brand), customer_id)
    if as_json:
        return _json(out)
    _table(
        "moves 流转记录",
        out,
        ["at", "customer_id", "action", "from_guide_id", "to_guide_id", "rule", "actor", "reason"],
    )
    return None


# -- guide KPIs ------------------------------------------------------------------------------------------------
@kpis_app.command("scorecard")
def kpi_scorecard(
    brand: str,
    start: str = typer.Option(None),
    end: str = typer.Option(None),
    sort: str = typer.Option("gmv"),
    as_guide: str = AS_GUIDE,
    as_json: bool = JSON_OUT,
) -> None:
    """Per guide: reachable, adds, losses, reply time, conversions, GMV, tasks on time, Moments, targets."""
    with open_context() as ctx:
        out = kpis.scorecard(ctx, cli_user(ctx, brand, as_guide), start, end, None, None, sort)
    if as_json:
        return _json(out)
    cols = [
        "rank",
        "guide_id",
        "name",
        "reachable",
        "new_customers",
        "losses",
        "reply_minutes",
        "conversions",
        "gmv",
        "tasks_on_time",
        "moments_done",
    ]
    _table(f"guide scorecard 导购考核 {out['period']['start']} – {out['period']['end']}", out["rows"], cols)
    return None


@kpis_app.command("target")
def kpi_target(
    brand: str, guide_id: str, metric: str, value: float, period: str = typer.Option(..., help="YYYY-MM")
) -> None:
    """Set a guide's target of one metric for a month."""
    with open_context() as ctx:
        out = kpis.set_target(ctx, cli_user(ctx, brand), guide_id, period, metric, value)
    console.print(out)


@kpis_app.command("inbox")
def kpi_inbox(brand: str, as_guide: str = typer.Option(..., "--as-guide"), as_json: bool = JSON_OUT) -> None:
    """A guide's inbox: journey tasks, follow-up reminders, Moments and campaign tasks."""
    with open_context() as ctx:
        out = inbox.inbox(ctx, cli_user(ctx, brand, as_guide))
    if as_json:
        return _json(out)
    _table(
        f"inbox 待办 ({out['total']}, overdue {out['overdue']})",
        out["items"],
        ["source", "title", "customer_id", "due_at", "overdue"],
    )
    return None
