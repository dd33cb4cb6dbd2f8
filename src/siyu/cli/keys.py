"""`siyu keys`: Segment write keys for a brand (create prints the secret once; list; revoke)."""

from __future__ import annotations

import typer
from rich.table import Table

from siyu.cli.common import console, open_context
from siyu.services import write_keys

app = typer.Typer(help="Segment write keys (写入密钥) used by /v1 ingestion.", no_args_is_help=True)


@app.command("create")
def create(brand: str, label: str = typer.Option("", "--label", help="what the key is for, e.g. 'web shop'")) -> None:
    """Create a write key for BRAND and print it once (only its hash is stored)."""
    with open_context() as ctx:
        key, secret = write_keys.create_key(ctx, brand, label)
    console.print(f"write key {key.id} for brand {brand} (label: {label or '-'}) — 只显示一次 / shown only once:")
    console.print(secret, markup=False, highlight=False)


@app.command("list")
def list_(brand: str) -> None:
    """List BRAND's write keys (prefix, label, created, revoked)."""
    with open_context() as ctx:
        keys = write_keys.list_keys(ctx, brand)
    table = Table("id", "prefix", "label", "created", "revoked 已吊销")
    for k in keys:
        table.add_row(k.id, k.key_prefix + "…", k.label, f"{k.created_at:%Y-%m-%d %H:%M}", str(k.revoked_at or ""))
    console.print(table)


@app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a write key by id; requests using it get HTTP 401 (within 2 s in running servers)."""
    with open_context() as ctx:
        key = write_keys.revoke_key(ctx, key_id)
    console.print(f"revoked {key.id} ({key.key_prefix}…) of brand {key.brand_id} at {key.revoked_at}")
