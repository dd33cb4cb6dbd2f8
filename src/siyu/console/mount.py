"""Mount the NiceGUI operator console on the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from siyu.services.context import Context


def mount_console(app: FastAPI, ctx: Context) -> None:
    """Attach the console pages (filled in by the console package)."""
    return None
