"""`siyu journeys ...`: journeys (SOP / 客户旅程) from the command line (Rich tables, --json for scripts).

A definition is JSON text (``--definition '{...}'``) or a file (``--file journey.json``); ``docs/journeys.md``
documents the language. ``validate`` prints every problem with its node id and field.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, err_console, open_context
from siyu.display import display_value
from siyu.domain.journey import JourneyError
from siyu.services.errors import SiyuError
from siyu.services.journeys import definitions as service
from siyu.services.journeys.stats import journey_stats

app = typer.Typer(help="Journeys (SOP): define, validate, publish, pause, statistics. 客户旅程", no_args_is_help=True)
JSON_OUT = typer.Option(False, "--json", help="print JSON instead of tables")
DEF_TEXT = typer.Option(None, help="the definition as JSON text")
DEF_FILE = typer.Option(None, help="a JSON file holding the definition")


def _print_json(data: Any) -> None:
    def default(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date | datetime) else str(v)

    console.print_json(json.dumps(data, ensure_ascii=False, default=default))


def _definition(definition: str | None, file: Path | None) -> Any:
    if (definition is None) == (file is None):
        raise SiyuError(
            "give the definition as --definition '<json>' or --file <path.json> (one of them)", "definition"
        )
    text = file.read_text(encoding="utf-8") if file is not None else str(definition)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SiyuError(f"the definition is not valid JSON: {exc}", "definition") from None


def _problems(exc: JourneyError) -> None:
    table = Table(title="problems 问题", title_justify="left")
    for c in ("node", "field", "message"):
        table.add_column(c)
    for e in exc.errors:
        table.add_row(e.get("node_id") or "—", e["field"], e["message"])
    err_console.print(table)


@app.command("list")
def list_cmd(brand: str, as_json: bool = JSON_OUT) -> None:
    """List journeys with their status and versions."""
    with open_context() as ctx:
        items = [j.as_dict() for j in service.list_journeys(ctx, cli_user(ctx, brand))]
        if as_json:
            _print_json(items)
            return
        table = Table(title="journeys 客户旅程", title_justify="left")
        cols = ["id", "name", "status", "version", "published_version", "updated_at"]
        for c in cols:
            table.add_column(c)
        for r in items:
            table.add_row(*(display_value(r.get(c)) for c in cols))
        console.print(table)


@app.command()
def show(brand: str, journey_id: str, as_json: bool = JSON_OUT) -> None:
    """Show a journey and its current definition."""
    with open_context() as ctx:
        info = service.get_journey(ctx, cli_user(ctx, brand), journey_id).as_dict()
        if not as_json:
            console.print(
                f"[bold]{info['name']}[/bold] {info['id']} {info['status']} v{info['version']} "
                f"(live: v{info['published_version']})"
            )
            info = info["definition"]
        _print_json(info)


@app.command()
def create(
    brand: str,
    name: str,
    definition: str | None = DEF_TEXT,
    file: Path | None = DEF_FILE,
    publish: bool = typer.Option(False, help="publish right away"),
) -> None:
    """Save a new journey (draft) from a definition."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        try:
            info = service.create_journey(ctx, user, name, _definition(definition, file))
        except JourneyError as exc:
            _problems(exc)
            raise typer.Exit(2) from None
        if publish:
            info = service.publish(ctx, user, info.id)
        console.print(f"{info.id} {info.status} v{info.version}")


@app.command()
def template(
    brand: str,
    template: str = typer.Argument(help="win_back or new_contact"),
    name: str = typer.Argument(help="the journey's name"),
    params: str = typer.Option("{}", help="template parameters as JSON, e.g. '{\"new_days\": 30}'"),
    publish: bool = typer.Option(False, help="publish right away"),
) -> None:
    """Create a journey (and its audience segment) from a template."""
    from siyu.services.journeys.templates import create_from_template

    with open_context() as ctx:
        user = cli_user(ctx, brand)
        try:
            info = create_from_template(ctx, user, template, name, json.loads(params))
        except ValueError as exc:
            raise SiyuError(f"--params is not valid JSON: {exc}", "params") from None
        if publish:
            info = service.publish(ctx, user, info.id)
        console.print(f"{info.id} {info.status} v{info.version}")


@app.command()
def validate(definition: str | None = DEF_TEXT, file: Path | None = DEF_FILE) -> None:
    """Check a definition; prints each problem with its node id and field (exit code 1 if any)."""
    try:
        service.validate(_definition(definition, file))
    except JourneyError as exc:
        _problems(exc)
        raise typer.Exit(1) from None
    except SiyuError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    console.print("valid ✓")


@app.command()
def publish(brand: str, journey_id: str) -> None:
    """Make the current version live (customers inside finish on their version)."""
    with open_context() as ctx:
        info = service.publish(ctx, cli_user(ctx, brand), journey_id)
        console.print(f"{info.id} {info.status}, live version v{info.published_version}")


@app.command()
def pause(brand: str, journey_id: str, resume: bool = typer.Option(False, "--resume", help="resume instead")) -> None:
    """Pause (hold every customer where they are) or, with --resume, go on."""
    with open_context() as ctx:
        info = service.set_status(ctx, cli_user(ctx, brand), journey_id, "active" if resume else "paused")
        console.print(f"{info.id} {info.status}")


@app.command()
def stats(brand: str, journey_id: str, version: int | None = None, as_json: bool = JSON_OUT) -> None:
    """Per-node counts and experiment results."""
    with open_context() as ctx:
        st = journey_stats(ctx, cli_user(ctx, brand), journey_id, version)
        if as_json:
            _print_json(st)
            return
        console.print(
            f"entries {st['entries']} · active {st['active']} · exited {st['exited']} {st['exits']} · "
            f"goal {st['goal_reached']}"
        )
        table = Table(title="nodes 节点", title_justify="left")
        for c in ("node", "kind", "entered", "waiting", "passed", "outcomes", "effects"):
            table.add_column(c)
        for n in st["nodes"]:
            table.add_row(
                n["id"],
                n["kind"],
                str(n["entered"]),
                str(n["waiting"]),
                json.dumps(n["passed"], ensure_ascii=False),
                json.dumps(n["outcomes"], ensure_ascii=False),
                json.dumps(n["effects"], ensure_ascii=False),
            )
        console.print(table)
        for ex in st["experiments"]:
            console.print(f"[bold]experiment {ex['node_id']}[/bold] vs {ex['comparator']}: {ex['verdict']}")
            for a in ex["arms"]:
                console.print(f"  {a['arm']}: {a['conversions']}/{a['customers']} rate={display_value(a['rate'])}")


@app.command()
def run(
    until_idle: bool = typer.Option(True, help="run until nothing is due (else one tick)"),
) -> None:
    """Run the engine now in this process (triggers, due steps, effects) instead of waiting for the schedule."""
    from siyu.services.journeys.scheduled import tick

    with open_context() as ctx:
        total: dict[str, Any] = {"entered": 0, "steps": 0}
        while True:
            r = tick(ctx)
            total["entered"] += r.get("entered", 0)
            total["steps"] += r.get("steps", 0)
            if not until_idle or r.get("steps", 0) == 0:
                break
        console.print(f"entered {total['entered']}, steps {total['steps']}")


@app.command()
def worker(
    threads: int = typer.Option(2, "--threads", min=1, max=16, help="Huey consumer threads in this process"),
    every: float = typer.Option(1.0, "--every", min=0.05, max=60, help="seconds between queued journey ticks"),
    read_only_warehouse: bool = typer.Option(
        True,
        "--read-only-warehouse/--warehouse-writer",
        help="DuckDB lets several processes read the warehouse only when none writes it: run extra workers "
        "read-only (tags / attributes are then left to a writing process)",
    ),
) -> None:
    """A journey worker process: a Huey consumer over the shared queue that queues a journey tick every
    ``--every`` seconds. Start several (one per core); they claim disjoint entries and effects of one state DB."""
    import time

    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.workers import enqueue_call, start_consumer

    ctx = Context.open(Settings.from_env(), read_only_warehouse=read_only_warehouse)
    consumer = start_consumer(ctx, workers=threads)
    console.print(f"journey worker: {threads} threads, a tick every {every} s (Ctrl-C stops)")
    try:
        while True:
            enqueue_call(ctx, "siyu.services.journeys.scheduled:tick", budget_seconds=max(1.0, every))
            time.sleep(every)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop(graceful=True)
        ctx.close()
