"""`siyu demo`: seed the deterministic demo brand (澜颜美妆 Lanyan Beauty) and serve it."""

from __future__ import annotations

import logging

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.cli.common import console, open_context
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, DemoLogin, SeedResult, seed_demo, seeded_info
from siyu.services.demo.seed import STAGES

app = typer.Typer(help="The demo brand 澜颜美妆 Lanyan Beauty: seed it, check it, serve it.", no_args_is_help=True)

STAGE_LABELS = {
    "dimensions": "门店/导购/渠道 stores, guides, channels",
    "customers": "客户/订单/事件 customers, orders, events",
    "spend": "渠道花费 channel spend",
    "oneid": "OneID 身份合并",
    "logins": "演示账号 demo logins",
}


def _seed_with_progress(ctx: Context, cfg: DemoConfig, force: bool, resolve: bool = True) -> SeedResult:
    if not force and seeded_info(ctx, cfg.brand_id) is not None:
        return seed_demo(ctx, cfg)  # nothing to do: no progress bars
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks = {s: bar.add_task(STAGE_LABELS[s], total=None, start=False) for s in STAGES}

        def progress(stage: str, done: int, total: int) -> None:
            task = tasks[stage]
            bar.start_task(task)
            bar.update(task, completed=done, total=total)

        return seed_demo(ctx, cfg, force=force, progress=progress, resolve=resolve)


def _print_result(result: SeedResult) -> None:
    if not result.seeded:
        console.print(
            f"brand [bold]{result.brand_id}[/bold] is already seeded — nothing done (use --force to rebuild it). "
            "演示品牌已存在。"
        )
        return
    table = Table(title=f"demo brand {result.brand_id} seeded in {result.seconds:.1f}s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in result.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"OneID: {result.oneid}")


def _showcase(ctx: Context, brand_id: str, wecom: bool) -> None:
    """Run the showcase step (campaigns, scripts, follow-ups, pool, journeys; Moments and codes with WeCom)."""
    from siyu.services.demo.showcase import run_showcase
    from siyu.services.wecom.config import client_for, get_config

    client = client_for(get_config(ctx, brand_id)) if wecom else None
    try:
        with console.status("演示场景 showcase: campaigns, scripts, follow-ups, pool, journeys…"):
            res = run_showcase(ctx, brand_id, client)
    except Exception as exc:  # the base demo still serves; the showcase can be run again later
        logging.getLogger(__name__).exception("demo showcase failed")
        console.print(f"[yellow]演示场景 showcase failed: {exc!r} — the base demo data is there; run `siyu demo seed` "
                      "again to retry the showcase[/yellow]")  # fmt: skip
        return
    finally:
        if client is not None:
            client.close()
    if res.created:
        made = ", ".join(f"{k} {v}" for k, v in res.parts.items() if v)
        console.print(f"演示场景 showcase created in {res.seconds:.1f}s: {made}")
    else:
        console.print("演示场景 showcase: already there — nothing done")


def _print_logins(logins: list[DemoLogin], url: str) -> None:
    table = Table(title=f"siyu demo — {url}")
    table.add_column("用户名 username")
    table.add_column("密码 password")
    table.add_column("角色 role")
    table.add_column("导购 guide")
    for x in logins[:3]:
        table.add_row(x.username, x.password, x.role.value, x.guide_id or "")
    if len(logins) > 3:
        table.add_row(f"… {logins[-1].username}", logins[-1].password, logins[-1].role.value, logins[-1].guide_id or "")
    console.print(table)


@app.command()
def seed(
    brand: str = typer.Option("demo", help="brand id to create/seed"),
    customers: int = typer.Option(50_000, help="number of customers (≈4 orders each)"),
    seed: int = typer.Option(42, help="random seed: the same seed gives identical data"),
    months: int = typer.Option(18, help="length of the history, ending 2026-10-31"),
    force: bool = typer.Option(False, "--force", help="delete the brand's warehouse rows and seed again"),
    oneid: bool = typer.Option(True, "--oneid/--no-oneid", help="resolve identities (OneID rebuild) at the end"),
    showcase: bool = typer.Option(
        True,
        "--showcase/--no-showcase",
        help="after the base seed, create the showcase (campaigns, scripts, follow-ups, pool, journeys) through "
        "the services; --no-showcase leaves only the deterministic base data",
    ),
) -> None:
    """Build the deterministic demo brand (stores, guides, channels, customers, orders, WeCom, events)."""
    cfg = DemoConfig(brand_id=brand, customers=customers, seed=seed, months=months)
    with open_context() as ctx:
        _print_result(_seed_with_progress(ctx, cfg, force, oneid))
        if showcase and oneid:  # the showcase finds customers through OneID's identities
            _showcase(ctx, brand, wecom=False)


@app.command()
def check(brand: str = typer.Option("demo", help="brand id")) -> None:
    """Recompute the funnel rates of a seeded demo brand from its tables (generator self-check)."""
    from siyu.services.demo.check import demo_rates

    with open_context() as ctx:
        rates = demo_rates(ctx, brand)
    table = Table(title=f"demo brand {brand}: rates")
    table.add_column("rate")
    table.add_column("value", justify="right")
    for name, value in rates.items():
        table.add_row(name, "—" if value is None else f"{value:.1%}")
    console.print(table)


@app.command()
def up(
    host: str = typer.Option("127.0.0.1", help="interface to serve on"),
    port: int = typer.Option(8000, help="port to serve on"),
    customers: int = typer.Option(50_000, help="customers of the demo brand when it is seeded now"),
    wecom_port: int = typer.Option(8900, help="port of the local WeCom server the demo brand talks to (0: none)"),
    showcase: bool = typer.Option(True, "--showcase/--no-showcase", help="create the showcase data (idempotent)"),
) -> None:
    """Create the stores, seed the demo brand if needed, print the logins and serve (what `make demo` runs)."""
    from siyu.cli.main import run_server
    from siyu.services.demo import local_wecom

    wecom = None
    with open_context() as ctx:
        result = _seed_with_progress(ctx, DemoConfig(customers=customers), force=False)
        _print_result(result)
        url = f"http://{host}:{port}"
        _print_logins(result.logins, url)
        if wecom_port and local_wecom.server_available():
            wecom = local_wecom.start(ctx, result.brand_id, wecom_port, f"http://127.0.0.1:{port}")
            console.print(
                f"本地企业微信 Local WeCom server: http://127.0.0.1:{wecom_port} — a simulated customer scans a code "
                f"with POST /_sim/scan?config_id=<code's config_id> (docs/wecom.md)"
            )
        if showcase:
            _showcase(ctx, result.brand_id, wecom=wecom is not None)
    console.print(f"打开 Open [bold]{url}[/bold] — Ctrl+C to stop")
    try:
        run_server(host, port)
    finally:
        if wecom is not None:
            wecom.terminate()
            wecom.wait(timeout=20)
