"""`siyu wecom configure|show|sync|callbacks`: the brand's WeCom connection from the terminal."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import func, select

from siyu.cli.common import console, open_context
from siyu.services.brands import get_brand
from siyu.services.wecom import processing
from siyu.services.wecom.config import REPLAY_WINDOW, WeComConfig, get_config, set_config
from siyu.services.wecom.groups import sync_groups
from siyu.services.wecom.sync import sync_contacts
from siyu.stores.state.wecom_models import WeComCallbackRow, WeComRejectionRow

app = typer.Typer(help="WeCom (企业微信): connection, contact sync, callbacks.", no_args_is_help=True)


@app.command()
def configure(
    brand: str,
    corp_id: str = typer.Option(..., help="企业ID (我的企业 → 企业信息)"),
    token: str = typer.Option(..., help="callback Token (3-32 letters/digits)"),
    aes_key: str = typer.Option(..., help="callback EncodingAESKey (43 characters)"),
    secret: str = typer.Option("", help="客户联系 secret, for API calls (sync, codes, welcome)"),
    api_base: str = typer.Option("https://qyapi.weixin.qq.com", help="WeCom API base (or a local server)"),
    replay_window: int = typer.Option(REPLAY_WINDOW, help="seconds a callback timestamp may differ from now"),
) -> None:
    """Store BRAND's WeCom configuration; prints the callback path to enter in the WeCom console."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        cfg = set_config(ctx, brand, WeComConfig(corp_id, token, aes_key, secret, api_base, replay_window))
        console.print(f"WeCom configured for {brand}: {cfg.public()}")
        console.print(f"callback URL: https://<your host>/api/wecom/callback/{brand}")


@app.command()
def show(brand: str) -> None:
    """BRAND's WeCom configuration (secrets masked)."""
    with open_context() as ctx:
        for k, v in get_config(ctx, brand).public().items():
            console.print(f"{k}: {v}")


@app.command()
def sync(
    brand: str, groups: bool = typer.Option(True, "--groups/--no-groups", help="also sync customer groups")
) -> None:
    """Full sync: every guide's customers (→ relations + OneID) and groups (→ group members) from WeCom (全量同步)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        s = sync_contacts(ctx, brand, progress=lambda m: console.print(f"[dim]{m}[/dim]"))
        console.print(
            f"[bold]{brand}[/bold]: {s.members} members ({s.guides_synced} guides synced), {s.records} contacts — "
            f"{s.relations_new} new, {s.relations_reactivated} re-added, {s.relations_lost} lost, "
            f"{s.observations} identities observed; {s.api_calls} API calls, fetch {s.fetch_seconds} s "
            f"(rate-limit waits {s.rate_wait_seconds} s), write {s.write_seconds} s"
        )
        if groups:
            g = sync_groups(ctx, brand)
            console.print(
                f"groups: {g.groups} (of guides), {g.joined} memberships started, {g.left} ended, "
                f"{g.observations} identities observed"
            )
        if s.unknown_members:
            shown = ", ".join(s.unknown_members[:10])
            console.print(
                f"[yellow]{len(s.unknown_members)} WeCom members are not guides (skipped): {shown}[/yellow] — "
                "import guides with their wecom_userid (`siyu import guides`)"
            )


@app.command()
def callbacks(
    brand: str,
    limit: int = typer.Option(20, help="rows to show"),
    process: bool = typer.Option(False, "--process", help="process pending callbacks now"),
) -> None:
    """Recent callbacks with their status, and recent rejections (伪造/重放)."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        if process:
            console.print(f"processed {processing.process_pending(ctx, brand)} callbacks")
        with ctx.sessions() as s:
            counts = dict(
                s.execute(
                    select(WeComCallbackRow.status, func.count())
                    .where(WeComCallbackRow.brand_id == brand)
                    .group_by(WeComCallbackRow.status)
                ).all()
            )
            rows = s.scalars(
                select(WeComCallbackRow)
                .where(WeComCallbackRow.brand_id == brand)
                .order_by(WeComCallbackRow.id.desc())
                .limit(limit)
            ).all()
            rejected = s.scalars(
                select(WeComRejectionRow)
                .where(WeComRejectionRow.brand_id == brand)
                .order_by(WeComRejectionRow.id.desc())
                .limit(limit)
            ).all()
        console.print(f"callbacks by status: {counts or 'none'}")
        table = Table("id", "change", "user", "customer", "status", "result")
        for r in rows:
            table.add_row(
                str(r.id), f"{r.event}/{r.change_type}", r.user_id, r.external_user_id, r.status, r.result or ""
            )
        console.print(table)
        if rejected:
            rt = Table("received", "reason", "detail")
            for j in rejected:
                rt.add_row(j.received_at.isoformat(sep=" ", timespec="seconds"), j.reason, j.detail)
            console.print(rt)
