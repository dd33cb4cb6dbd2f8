"""`siyu messaging send|outbox|dead-letters|resend|process|providers|set-provider`: SMS, email and webhooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from siyu.cli.common import cli_user, console, open_context
from siyu.services import messaging
from siyu.services.errors import SiyuError

app = typer.Typer(help="Messaging: SMS, email and webhooks through the outbox (消息发送 / 死信).", no_args_is_help=True)

STATUS_STYLE = {"sent": "green", "queued": "cyan", "sending": "cyan", "failed": "yellow", "dead": "red"}


def _pairs(values: list[str], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise SiyuError(f"{name} {v!r} must look like key=value", name)
        out[key] = val
    return out


def _show(m: dict[str, Any]) -> None:
    """One message as ``field: value`` lines (narrow terminals keep every value whole)."""
    style = STATUS_STYLE.get(m["status"], "")
    for k in (
        "id",
        "channel",
        "purpose",
        "recipient",
        "customer_id",
        "template",
        "status",
        "attempts",
        "error_code",
        "error",
        "vendor_id",
        "next_attempt_at",
        "created_at",
        "sent_at",
    ):
        v = m.get(k)
        if v is None:
            continue
        console.print(f"{k}: [{style}]{v}[/{style}]" if k == "status" else f"{k}: {v}", soft_wrap=True)


def _table(items: list[dict[str, Any]], title: str) -> None:
    t = Table(title=title)
    for col in (
        "id",
        "channel",
        "purpose",
        "recipient",
        "template",
        "status",
        "attempts",
        "error",
        "vendor_id",
        "created_at",
    ):
        t.add_column(col, overflow="fold")
    for m in items:
        style = STATUS_STYLE.get(m["status"], "")
        t.add_row(
            m["id"],
            m["channel"],
            m["purpose"],
            m["recipient"],
            m["template"],
            f"[{style}]{m['status']}[/{style}]",
            str(m["attempts"]),
            (m["error_code"] or "") + (f": {m['error']}" if m["error"] else ""),
            m["vendor_id"] or "",
            (m["created_at"] or "")[:19],
        )
    console.print(t)


@app.command()
def send(
    brand: str,
    channel: str = typer.Option(..., help="sms | email | webhook"),
    to: str = typer.Option("", help="phone or email (default: the customer's)"),
    customer: str = typer.Option("", help="customer id"),
    purpose: str = typer.Option("transactional", help="marketing (capped per customer per day) | transactional"),
    template: str = typer.Option("", help="SMS template code"),
    param: list[str] = typer.Option([], help="SMS template variable key=value (repeat)"),
    sign_name: str = typer.Option("", help="SMS sign name (default: the provider's)"),
    subject: str = typer.Option("", help="email subject"),
    text: str = typer.Option("", help="email text body"),
    html_file: Path | None = typer.Option(None, help="email HTML body from a file"),
    topic: str = typer.Option("", help="webhook topic"),
    payload: str = typer.Option("{}", help="webhook payload (JSON object)"),
    key: str = typer.Option("", help="idempotency key: the same key never sends twice"),
    now: bool = typer.Option(False, "--now", help="deliver in this process instead of the background queue"),
) -> None:
    """Put one message into BRAND's outbox (and deliver it with --now)."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        try:
            body = json.loads(payload)
        except ValueError as exc:
            raise SiyuError(f"payload is not JSON: {exc}", "payload") from exc
        req = messaging.SendRequest(
            channel=channel,
            recipient=to or None,
            customer_id=customer or None,
            purpose=purpose,
            template=template,
            params=_pairs(param, "param"),
            sign_name=sign_name or None,
            subject=subject,
            text=text,
            html=html_file.read_text(encoding="utf-8") if html_file else None,
            topic=topic,
            payload=body,
            idempotency_key=key or None,
        )
        message, created = messaging.send(ctx, user, req, queue=not now)
        if now and created:
            messaging.deliver(ctx, message["id"])
        message = messaging.get_message(ctx, user, message["id"])
        console.print("accepted" if created else "already accepted (same idempotency key)")
        _show(message)
        if message["status"] in ("dead", "failed"):
            raise typer.Exit(1)


@app.command()
def outbox(
    brand: str,
    status: str = typer.Option("", help="queued | sending | sent | failed | dead"),
    channel: str = typer.Option("", help="sms | email | webhook"),
    customer: str = typer.Option("", help="customer id"),
    limit: int = 50,
) -> None:
    """BRAND's outbox, newest first."""
    with open_context() as ctx:
        page = messaging.list_messages(
            ctx, cli_user(ctx, brand), status or None, channel or None, None, customer or None, None, limit
        )
        _table(
            page["items"],
            f"outbox · {brand} · {page['total']} messages · "
            + ", ".join(f"{k} {v}" for k, v in page["by_status"].items()),
        )


@app.command("dead-letters")
def dead_letters(brand: str, channel: str = typer.Option("", help="sms | email | webhook"), limit: int = 50) -> None:
    """Messages that will not be retried automatically; re-send one with `siyu messaging resend`."""
    with open_context() as ctx:
        page = messaging.list_messages(ctx, cli_user(ctx, brand), "dead", channel or None, limit=limit)
        _table(page["items"], f"dead letters · {brand} · {page['total']}")


@app.command()
def resend(
    brand: str, message_id: str, now: bool = typer.Option(False, "--now", help="deliver in this process")
) -> None:
    """Queue dead letter MESSAGE_ID again (attempts start over)."""
    with open_context() as ctx:
        user = cli_user(ctx, brand)
        messaging.resend(ctx, user, message_id, queue=not now)
        if now:
            messaging.deliver(ctx, message_id)
        message = messaging.get_message(ctx, user, message_id)
        _show(message)
        if message["status"] in ("dead", "failed"):
            raise typer.Exit(1)


@app.command()
def process() -> None:
    """Deliver every queued or due message of every brand now (what the messaging.outbox schedule does)."""
    with open_context() as ctx:
        counts = messaging.process_due(ctx)
        console.print(", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def providers(brand: str) -> None:
    """BRAND's provider settings (secrets shown only as set / not set)."""
    with open_context() as ctx:
        console.print_json(json.dumps(messaging.public_settings(ctx, cli_user(ctx, brand)), ensure_ascii=False))


@app.command("set-provider")
def set_provider(
    brand: str,
    channel: str,
    provider: str,
    setting: list[str] = typer.Option([], "--set", help="key=value (repeat); secrets are asked for when missing"),
) -> None:
    """Set BRAND's provider of CHANNEL, e.g. `sms aliyun --set access_key_id=... --set sign_name=...`."""
    with open_context() as ctx:
        values: dict[str, Any] = dict(_pairs(setting, "--set"))
        for secret in messaging.providers.FIELDS.get(channel, {}).get(provider, ((), (), ()))[1]:
            if secret not in values:
                values[secret] = typer.prompt(
                    f"{secret} (empty: keep the stored one)", default="", hide_input=True, show_default=False
                )
        view = messaging.set_provider(ctx, cli_user(ctx, brand), channel, provider, values)
        console.print_json(json.dumps(view, ensure_ascii=False))


@app.command()
def cap(brand: str, per_day: int) -> None:
    """Set BRAND's per-customer daily cap on marketing messages (default 1)."""
    with open_context() as ctx:
        messaging.set_marketing_cap(ctx, cli_user(ctx, brand), per_day)
        console.print(f"marketing cap · {brand}: {per_day} per customer per day")
