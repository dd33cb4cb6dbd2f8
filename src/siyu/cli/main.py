"""The `siyu` command line (Typer + Rich)."""

from __future__ import annotations

import typer

from siyu.cli.common import console, open_context

app = typer.Typer(help="siyu (私域) — private-domain customer operations.", no_args_is_help=True)


@app.command()
def init() -> None:
    """Create (or migrate) the embedded stores under SIYU_DATA_DIR."""
    with open_context() as ctx:
        console.print(f"state: {ctx.settings.state_url}\nwarehouse: {ctx.settings.warehouse_file}")


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API (/v1, /api, /docs) and the console (/) with uvicorn."""
    run_server(host, port)


def run_server(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Open the stores and serve the app until interrupted (shared by `serve` and `demo up`)."""
    import uvicorn

    from siyu.api.app import create_app
    from siyu.config import Settings
    from siyu.services.context import Context

    ctx = Context.open(Settings.from_env())
    try:
        from siyu.services.ingest import start_loader

        start_loader(ctx)  # load the ingest log now, also what `siyu serve-ingest` processes append to it
        console.print(f"siyu is serving on [bold]http://{host}:{port}[/bold]  (API docs: /docs)")
        uvicorn.run(create_app(ctx), host=host, port=port, log_level="warning")
    finally:
        ctx.close()


def _register() -> None:
    """Attach sub-command groups (each area adds one line)."""
    from siyu.cli.brands import app as brands_app

    app.add_typer(brands_app, name="brands")
    from siyu.cli.demo import app as demo_app

    app.add_typer(demo_app, name="demo")
    from siyu.cli.keys import app as keys_app

    app.add_typer(keys_app, name="keys")
    from siyu.cli.imports import app as imports_app

    app.add_typer(imports_app, name="import")
    from siyu.cli.customers import app as customers_app
    from siyu.cli.users import app as users_app

    app.add_typer(customers_app, name="customers")
    app.add_typer(users_app, name="users")
    from siyu.cli.oneid import app as oneid_app

    app.add_typer(oneid_app, name="oneid")
    from siyu.cli.metrics import app as metrics_app

    app.add_typer(metrics_app, name="metrics")
    from siyu.cli.segments import app as segments_app

    app.add_typer(segments_app, name="segments")
    from siyu.cli.clv import app as clv_app

    app.add_typer(clv_app, name="clv")

    from siyu.cli.wecom import app as wecom_app

    app.add_typer(wecom_app, name="wecom")
    from siyu.cli.wecom_verify import app as wecom_verify_app

    wecom_app.add_typer(wecom_verify_app, name="verify-file")  # siyu wecom verify-file set|show|clear
    from siyu.cli.wecom_behavior import behavior_sync

    wecom_app.command("behavior-sync")(behavior_sync)  # 联系客户统计 per guide and day
    from siyu.cli.wecom_codes import app as wecom_codes_app

    app.add_typer(wecom_codes_app, name="wecom-codes")
    from siyu.cli.wecom_ops import app as wecom_ops_app

    app.add_typer(wecom_ops_app, name="wecom-ops")
    from siyu.cli.messaging import app as messaging_app

    app.add_typer(messaging_app, name="messaging")
    from siyu.cli.journeys import app as journeys_app

    app.add_typer(journeys_app, name="journeys")
    from siyu.cli.secrets import app as secrets_app

    app.add_typer(secrets_app, name="secrets")
    from siyu.cli.scripts import app as scripts_app
    from siyu.cli.scripts import sidebar_app

    app.add_typer(scripts_app, name="scripts")
    app.add_typer(sidebar_app, name="sidebar")
    from siyu.cli.campaigns import app as campaigns_app

    app.add_typer(campaigns_app, name="campaigns")
    from siyu.cli.campaigns_stats import app as campaign_stats_app

    app.add_typer(campaign_stats_app, name="campaign-stats")
    from siyu.cli.rewards import app as rewards_app
    from siyu.cli.rewards import points_app

    app.add_typer(rewards_app, name="rewards")
    app.add_typer(points_app, name="points")
    from siyu.cli import guide_work

    app.add_typer(guide_work.followups_app, name="followups")
    app.add_typer(guide_work.moments_app, name="moments")
    app.add_typer(guide_work.pool_app, name="pool")
    app.add_typer(guide_work.kpis_app, name="guide-kpis")
    from siyu.cli.warehouse import app as warehouse_app

    app.add_typer(warehouse_app, name="warehouse")
    from siyu.cli import ops

    ops.register(app)  # doctor, migrate, worker
    from siyu.cli import ingest

    ingest.register(app)  # serve-ingest (ingest-only processes)
    from siyu.cli import public

    public.register(app)  # serve-public (public-pages processes)


_register()
