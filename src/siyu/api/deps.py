"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from siyu.services.context import Context


def get_ctx(request: Request) -> Context:
    """The process's Context, set by ``create_app``."""
    ctx: Context = request.app.state.ctx
    return ctx
