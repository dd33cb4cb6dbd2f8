"""`siyu wecom-ops ...`: corp tags and segment tag rules, mass sends (群发), inheritance (继承) from the terminal."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.services.wecom import inheritance, mass_send, tag_rules, tags
from siyu.services.wecom.config import client_for, get_config

app = typer.Typer(help="WeCom operations: tags and tag rules, mass sends, inheritance.", no_args_is_help=True)


def _totals(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items()) if v) or "-"


@app.command("tags")
def list_tags(brand: str) -> None:
    """BRAND's corp tags in WeCom (groups, tags, order)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        t = Table("group", "tag id", "name", "order")
        for g in tags.corp_tags(client_for(get_config(ctx, brand))):
            for tag in g["tags"]:
                t.add_row(str(g["group_name"]), tag["id"], tag["name"], str(tag["order"]))
        console.print(t)


@app.command("tag-create")
def tag_create(
    brand: str,
    name: str,
    group: str = typer.Option(..., help="group name (created when missing)"),
    order: int | None = typer.Option(None, help="the larger shows first"),
) -> None:
    """Create a corp tag in WeCom (name ≤ 30 characters)."""
    with open_context() as ctx:
        made = tags.create_tag(ctx, cli_user(ctx, brand), client_for(get_config(ctx, brand)), name, group, "", order)
        console.print(f"tag {made['id']} {made['name']} in group {made['group_name']}")


@app.command("tag-rule-add")
def rule_add(
    brand: str,
    segment_id: str,
    tag_id: str = typer.Option("", help="an existing corp tag id"),
    tag_name: str = typer.Option("", help="or a new tag's name"),
    group: str = typer.Option("", help="its group"),
) -> None:
    """Tag SEGMENT_ID's members with a corp tag (kept in step by tag-rule-refresh)."""
    with open_context() as ctx:
        r = tag_rules.create_rule(ctx, cli_user(ctx, brand), segment_id, tag_id, tag_name, group)
        console.print(f"rule {r['id']}: segment {r['segment_id']} → tag {r['tag_id']} {r['tag_name']}")


@app.command("tag-rules")
def rules(brand: str) -> None:
    """Tag rules with their last refresh."""
    with open_context() as ctx:
        t = Table("id", "segment", "tag", "refreshed", "last result")
        for r in tag_rules.list_rules(ctx, cli_user(ctx, brand)):
            res = r["last_result"]
            t.add_row(
                str(r["id"]),
                r["segment_id"],
                f"{r['tag_id']} {r['tag_name']}",
                r["refreshed_at"] or "-",
                f"+{res.get('marked', 0)} −{res.get('removed', 0)}" if res else "-",
            )
        console.print(t)


@app.command("tag-rule-refresh")
def rule_refresh(brand: str, rule_id: int) -> None:
    """Recompute the segment; mark the tag on entrants, remove it from leavers."""
    with open_context() as ctx:
        r = tag_rules.refresh_rule(ctx, cli_user(ctx, brand), rule_id)["result"]
        console.print(
            f"members {r['members']}: marked {r['marked']}, removed {r['removed']}, remaining {r['remaining']}, "
            f"errors {r['error_count']}"
        )
        for e in r["errors"]:
            console.print(f"  [red]{e}[/red]")


@app.command("mass-send")
def send(
    brand: str,
    segment_id: str,
    content: str = typer.Option(..., help="text, ≤ 4000 bytes"),
    name: str = typer.Option(""),
    group: bool = typer.Option(False, help="to the guides' customer groups"),
    key: str | None = typer.Option(None, help="idempotency key: the same key never sends twice"),
) -> None:
    """群发 to SEGMENT_ID's members: one task per guide (the guide confirms in WeCom); the daily cap first."""
    with open_context() as ctx:
        out = mass_send.create(
            ctx, cli_user(ctx, brand), segment_id, content, name, "group" if group else "single", [], key
        )
        _show_send(out)


def _show_send(out: dict[str, Any]) -> None:
    console.print(f"mass send {out['id']} ({out['status']}): {_totals(out['totals'])}")
    t = Table("guide", "userid", "chunk", "targets", "task", "msgid", "confirmed", "results / error")
    for k in out["tasks"]:
        t.add_row(
            k["guide_id"],
            k["userid"],
            str(k["chunk"]),
            str(k["targets"]),
            k["status"],
            k["msgid"],
            "yes" if k["confirmed"] else "no",
            k["error"] or _totals(k["stats"]),
        )
    console.print(t)
    if out["capped_sample"]:
        console.print(
            f"capped (not sent, daily cap {out['cap_per_day']}): "
            + ", ".join(c["customer_id"] for c in out["capped_sample"][:20])
        )


@app.command("mass-sends")
def sends(brand: str, limit: int = 20) -> None:
    """Recent mass sends with totals by recipient status."""
    with open_context() as ctx:
        t = Table("id", "name", "segment", "status", "recipients", "totals")
        for s in mass_send.list_sends(ctx, cli_user(ctx, brand), limit):
            t.add_row(s["id"], s["name"], s["segment_id"], s["status"], str(s["recipients"]), _totals(s["totals"]))
        console.print(t)


@app.command("mass-send-show")
def send_show(
    brand: str, send_id: str, refresh: bool = typer.Option(False, help="ask WeCom for results first")
) -> None:
    """One mass send: tasks, confirmations, results, capped customers."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        _show_send(mass_send.refresh(ctx, user, send_id) if refresh else mass_send.get(ctx, user, send_id))


@app.command("transfer")
def transfer(
    brand: str,
    handover: str,
    takeover: str,
    segment: str | None = typer.Option(None, help="only its members"),
    resigned: bool = typer.Option(False, help="离职继承: the handover guide has left"),
) -> None:
    """Move HANDOVER guide's customers to TAKEOVER guide (WeCom completes it after 24 h)."""
    with open_context() as ctx:
        _show_transfer(inheritance.start(ctx, cli_user(ctx, brand), handover, takeover, segment, resigned))


def _show_transfer(out: dict[str, Any]) -> None:
    console.print(
        f"transfer {out['id']} {out['handover_guide_id']} → {out['takeover_guide_id']}: {_totals(out['totals'])}"
    )
    t = Table("external_userid", "customer", "status", "reason", "takeover at")
    for c in out["customer_rows"][:50]:
        t.add_row(c["external_userid"], c["customer_id"], c["status"], c["reason"], c["takeover_at"] or "")
    console.print(t)


@app.command("transfers")
def transfers(brand: str, limit: int = 20) -> None:
    """Recent transfers with customers by status."""
    with open_context() as ctx:
        t = Table("id", "handover", "takeover", "resigned", "customers", "totals")
        for x in inheritance.list_transfers(ctx, cli_user(ctx, brand), limit):
            t.add_row(
                x["id"],
                x["handover_guide_id"],
                x["takeover_guide_id"],
                "yes" if x["resigned"] else "",
                str(x["customers"]),
                _totals(x["totals"]),
            )
        console.print(t)


@app.command("transfer-show")
def transfer_show(
    brand: str,
    transfer_id: str,
    refresh: bool = typer.Option(False, help="read transfer_result first"),
    status: str | None = typer.Option(None, help="waiting | done | refused | limit | failed"),
) -> None:
    """One transfer with its customers' outcomes and reasons."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        if refresh:
            inheritance.refresh(ctx, user, transfer_id)
        _show_transfer(inheritance.get(ctx, user, transfer_id, status))
