"""Siyu's Huey tasks. Each task receives the data-directory key and looks its Context up in the registry."""

from __future__ import annotations

import logging
from typing import Any

from huey.api import Huey

from siyu.services.context import Context

log = logging.getLogger(__name__)

IMPORT_TASK = "siyu.run_import_job"
_TASKS: dict[int, Any] = {}


def run_import_job(ctx_key: str, job_id: str) -> str:
    """Run a pending import job with the registered Context (or a freshly opened one)."""
    from siyu.services.imports import runner
    from siyu.workers.queue import context_for

    ctx = context_for(ctx_key)
    if ctx is not None:
        return runner.execute_job(ctx, job_id).status
    from siyu.config import Settings

    own = Context.open(Settings.from_env(data_dir=ctx_key))
    try:
        return runner.execute_job(own, job_id).status
    finally:
        own.close()


def register(huey: Huey) -> None:
    """Attach siyu's tasks to a Huey instance."""
    _TASKS[id(huey)] = huey.task(name=IMPORT_TASK)(run_import_job)


def enqueue_import(ctx: Context, job_id: str) -> None:
    """Queue an import job on the Context's Huey queue."""
    from siyu.workers.queue import context_key, get_huey

    huey = get_huey(ctx.settings)
    _TASKS[id(huey)](context_key(ctx.settings), job_id)
