"""`siyu wecom-codes list|create|update|delete|qr|stats|adds|refresh`: channel codes (渠道活码)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.services.wecom import channel_codes as svc

app = typer.Typer(help="WeCom channel codes (渠道活码): QR codes per channel × guides, welcome, tag, invite.")
BRAND = typer.Argument(..., help="brand id")
JSON = typer.Option(False, "--json", help="print JSON instead of tables")


def _json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _guides(specs: list[str]) -> list[dict[str, Any]]:
    """``g1`` or ``g1:20`` (guide id, daily cap) → [{guide_id, cap}]."""
    out: list[dict[str, Any]] = []
    for s in specs:
        gid, _, cap = s.partition(":")
        if cap and not cap.isdigit():
            raise typer.BadParameter(f"{s!r}: write GUIDE or GUIDE:CAP with a whole number cap", param_hint="--guide")
        out.append({"guide_id": gid, "cap": int(cap) if cap else None})
    return out


def _welcome(text: str | None, attachments: Path | None, coupon: str | None) -> dict[str, Any] | None:
    if text is None and attachments is None and coupon is None:
        return None
    w: dict[str, Any] = {"text": text or "", "attachments": json.loads(attachments.read_text()) if attachments else []}
    if coupon:
        cid, _, title = coupon.partition(":")
        w["coupon"] = {"id": cid, "title": title}
    return w


def _rules(path: Path | None) -> list[dict[str, Any]] | None:
    return None if path is None else list(json.loads(path.read_text()))


def _print_codes(rows: list[dict[str, Any]]) -> None:
    table = Table(title="channel codes", title_justify="left")
    for c in ("id", "name", "channel", "campaign", "guides (cap)", "fallback", "showing", "state", "status"):
        table.add_column(c)
    for r in rows:
        guides = ", ".join(f"{g['guide_id']}" + (f" ({g['cap']})" if g.get("cap") else "") for g in r["guides"])
        table.add_row(
            str(r["id"]),
            r["name"],
            r["channel_id"],
            r["campaign"],
            guides,
            (r["fallback"] or {}).get("guide_id", ""),
            ", ".join(r["users"]) + f" · {r['rotation']}",
            r["state"],
            r["status"],
        )
    console.print(table)


@app.command("list")
def list_cmd(brand: str = BRAND, deleted: bool = typer.Option(False, "--deleted"), as_json: bool = JSON) -> None:
    """The brand's codes (with --deleted: deleted ones too)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        rows = svc.list_codes(ctx, brand, include_deleted=deleted)
    _json(rows) if as_json else _print_codes(rows)


@app.command("create")
def create_cmd(
    brand: str = BRAND,
    name: str = typer.Option(..., "--name"),
    channel: str = typer.Option(..., "--channel", help="channel_id the adds are attributed to"),
    guide: list[str] = typer.Option(..., "--guide", help="GUIDE or GUIDE:DAILY_CAP; repeat for round-robin"),
    campaign: str = typer.Option("", "--campaign"),
    fallback: str | None = typer.Option(None, "--fallback", help="guide taking the code when all are capped"),
    welcome: str | None = typer.Option(None, "--welcome", help="text with {name} {guide} {coupon}"),
    attachments: Path | None = typer.Option(None, "--attachments", help="JSON file: list of WeCom attachments"),
    coupon: str | None = typer.Option(None, "--coupon", help="COUPON_ID:TITLE (the gift; {coupon} shows TITLE)"),
    rules: Path | None = typer.Option(None, "--group-rules", help="JSON file: [{attribute, values, chat_ids}]"),
    no_tag: bool = typer.Option(False, "--no-tag", help="do not tag new contacts with the channel"),
    as_json: bool = JSON,
) -> None:
    """Make a 联系我 code in WeCom and store it."""
    spec = svc.CodeSpec(
        name,
        channel,
        _guides(guide),
        campaign,
        fallback,
        _welcome(welcome, attachments, coupon) or {},
        not no_tag,
        _rules(rules) or [],
    )
    with open_context() as ctx:
        cli_user(ctx, brand)
        row = svc.create_code(ctx, brand, spec, "cli")
    _json(row) if as_json else _print_codes([row])


@app.command("update")
def update_cmd(
    brand: str = BRAND,
    code_id: int = typer.Argument(...),
    name: str | None = typer.Option(None, "--name"),
    guide: list[str] = typer.Option([], "--guide", help="GUIDE or GUIDE:DAILY_CAP (replaces the list)"),
    campaign: str | None = typer.Option(None, "--campaign"),
    fallback: str | None = typer.Option(None, "--fallback"),
    welcome: str | None = typer.Option(None, "--welcome"),
    attachments: Path | None = typer.Option(None, "--attachments"),
    coupon: str | None = typer.Option(None, "--coupon"),
    rules: Path | None = typer.Option(None, "--group-rules"),
    as_json: bool = JSON,
) -> None:
    """Change a code (only the options given); WeCom's code follows."""
    changes: dict[str, Any] = {
        k: v for k, v in {"name": name, "campaign": campaign, "fallback_guide_id": fallback}.items() if v is not None
    }
    if guide:
        changes["guides"] = _guides(guide)
    if (w := _welcome(welcome, attachments, coupon)) is not None:
        changes["welcome"] = w
    if (r := _rules(rules)) is not None:
        changes["group_rules"] = r
    with open_context() as ctx:
        cli_user(ctx, brand)
        row = svc.update_code(ctx, brand, code_id, changes)
    _json(row) if as_json else _print_codes([row])


@app.command("delete")
def delete_cmd(brand: str = BRAND, code_id: int = typer.Argument(...)) -> None:
    """Delete the code in WeCom (kept here, with its stats, as deleted)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        svc.delete_code(ctx, brand, code_id)
    console.print(f"channel code {code_id} deleted")


@app.command("qr")
def qr_cmd(
    brand: str = BRAND,
    code_id: int = typer.Argument(...),
    out: Path = typer.Option(..., "--out", "-o", help="file to write (.png or .svg)"),
    scale: int = typer.Option(8, "--scale"),
) -> None:
    """Write the code's QR image."""
    fmt = out.suffix.lstrip(".").lower() or "png"
    with open_context() as ctx:
        cli_user(ctx, brand)
        data = svc.qr_image(ctx, brand, code_id, fmt, scale)
    out.write_bytes(data)
    console.print(f"wrote {out} ({len(data):,} bytes)")


@app.command("stats")
def stats_cmd(
    brand: str = BRAND,
    code_id: int = typer.Argument(...),
    days: int = typer.Option(30, "--days"),
    as_guide: str | None = typer.Option(None, "--as-guide", help="only this guide's adds"),
    as_json: bool = JSON,
) -> None:
    """Adds, losses (customer deleted / guide deleted) and net, per guide."""
    with open_context() as ctx:
        cli_user(ctx, brand, as_guide)
        st = svc.stats(ctx, brand, code_id, as_guide, days)
    if as_json:
        _json(st)
        return
    table = Table(title=f"channel code {code_id} · {st['code']['name']} · {st['code']['channel_id']}")
    for c in ("guide", "adds", "lost: customer", "lost: guide", "lost: other", "net"):
        table.add_column(c, justify="left" if c == "guide" else "right")
    for g in [
        *st["guides"],
        {
            "guide_id": "total",
            **{k: st[k] for k in ("adds", "lost_customer", "lost_guide")},
            "lost_other": st["lost_other"],
            "net": st["net"],
        },
    ]:
        table.add_row(g["guide_id"], *(str(g[k]) for k in ("adds", "lost_customer", "lost_guide", "lost_other", "net")))
    console.print(table)


@app.command("adds")
def adds_cmd(
    brand: str = BRAND,
    code_id: int = typer.Argument(...),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = JSON,
) -> None:
    """The latest adds with the welcome, tag and invite outcome of each."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        rows = svc.adds_log(ctx, brand, code_id, None, limit)
    if as_json:
        _json(rows)
        return
    table = Table(title=f"adds of channel code {code_id}")
    for c in ("day", "guide", "external_userid", "welcome", "tag", "invite", "detail"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["day"], r["guide_id"], r["external_userid"], r["welcome"], r["tag"], r["invite"], r["welcome_detail"]
        )
    console.print(table)


@app.command("refresh")
def refresh_cmd(brand: str = BRAND) -> None:
    """Re-point every code at today's guides under their cap (run after midnight)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        n = svc.refresh_all(ctx, brand)
    console.print(f"{n} codes re-pointed")
