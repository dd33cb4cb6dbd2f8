"""`siyu wecom verify-file set|show|clear`: WeCom's trusted-domain verification file (WW_verify_....txt), served by
siyu at the web root (``/<name>``) with its exact bytes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from siyu.cli.common import cli_user, console, open_context
from siyu.services.errors import SiyuError
from siyu.services.sidebar import verify_file

app = typer.Typer(
    help="WeCom's trusted-domain verification file (可信域名校验文件), served at /WW_verify_....txt.",
    no_args_is_help=True,
)


@app.command("set")
def set_cmd(
    brand: str,
    path: Path = typer.Argument(..., help="the WW_verify_<16 letters or digits>.txt downloaded from WeCom"),
    name: str = typer.Option("", help="the name to serve it under (default: the file's own name)"),
) -> None:
    """Serve the file at /<its name> from now on (replaces the brand's previous one)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        if not path.is_file():
            raise SiyuError(f"{path} is not a file", "path")
        got = verify_file.set_file(ctx, brand, name or path.name, path.read_bytes()[: verify_file.MAX_BYTES + 1], "cli")
        console.print_json(json.dumps(got, ensure_ascii=False))


@app.command()
def show(brand: str) -> None:
    """The brand's verification file (name, size, checksum, when set)."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        console.print_json(json.dumps({"file": verify_file.get_file(ctx, brand)}, ensure_ascii=False))


@app.command()
def clear(brand: str) -> None:
    """Stop serving the brand's verification file."""
    with open_context() as ctx:
        cli_user(ctx, brand)
        console.print("cleared" if verify_file.clear_file(ctx, brand, "cli") else "no verification file was set")
