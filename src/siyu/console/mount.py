"""Mount the NiceGUI operator console on the FastAPI app at ``/console`` (``/`` redirects there).

NiceGUI keeps one global UI app per process: pages are registered once, and every FastAPI app built by
``create_app`` mounts that same UI app; the console serves the Context of the most recently mounted app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from nicegui import core, ui

from siyu.console import session
from siyu.services.context import Context

_mounted = {"done": False}

# console modules of later areas, each with a ``register()`` that adds its pages (each area adds its module here)
AREA_PAGES: tuple[str, ...] = (
    "metrics_value_page",
    "metrics_guides_page",
    "metrics_overview_page",
    "metrics_operations_page",
    "segments_page",
    "clv_page",
    "messaging_page",
    "wecom_codes_page",
    "wecom_ops_page",
    "wecom_welcome_page",
    "wecom_settings_page",
    "journeys_page",
    "journey_editor",
    "tasks_page",
    "scripts_page",
    "campaigns_page",
    "campaign_builder",  # /campaigns/new before /campaigns/{id}
    "campaign_dashboard",
    "followups_page",
    "pool_page",
    "moments_page",
    "guide_scorecard_page",
)


def _register_areas() -> None:
    import importlib

    for name in AREA_PAGES:
        importlib.import_module(f"siyu.console.{name}").register()


def mount_console(app: FastAPI, ctx: Context) -> None:
    """Attach the console pages under ``/console`` and redirect ``/`` to it."""
    session.set_context(ctx)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(session.MOUNT_PATH + "/")

    if not _mounted["done"]:
        from siyu.console import import_page, pages

        pages.register()
        import_page.register()
        _register_areas()
        ui.run_with(
            app,
            mount_path=session.MOUNT_PATH,
            storage_secret=ctx.settings.secret_key,
            title="私域 siyu",
            language="zh-CN",
            show_welcome_message=False,
            favicon="🧭",
        )
        _mounted["done"] = True
        return
    # Later apps in the same process (tests, several servers): mount the same UI app and start it if needed.
    app.mount(session.MOUNT_PATH, core.app)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(parent: Any) -> AsyncIterator[Any]:
        from nicegui.nicegui import _shutdown, _startup

        started_here = not core.app.is_started
        if started_here:
            await _startup()
        async with inner(parent) as state:
            yield state
        if started_here:
            await _shutdown()

    app.router.lifespan_context = lifespan
