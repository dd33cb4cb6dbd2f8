"""Siyu's Huey tasks. Each task receives the data-directory key and looks its Context up in the registry."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from huey.api import Huey

from siyu.services.context import Context

log = logging.getLogger(__name__)

IMPORT_TASK = "siyu.run_import_job"
CALL_TASK = "siyu.call"
_TASKS: dict[tuple[int, str], Any] = {}


def _context(ctx_key: str) -> tuple[Context, bool]:
    """The registered Context for a data dir, else a freshly opened one (second value: caller must close it)."""
    from siyu.workers.queue import context_for

    ctx = context_for(ctx_key)
    if ctx is not None:
        return ctx, False
    from siyu.config import Settings

    return Context.open(Settings.from_env(data_dir=ctx_key)), True


def call(ctx_key: str, target: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``target`` ("package.module:function", called as ``function(ctx, *args, **kwargs)``)."""
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    ctx, own = _context(ctx_key)
    try:
        return func(ctx, *args, **kwargs)
    finally:
        if own:
            ctx.close()


def run_import_job(ctx_key: str, job_id: str) -> str:
    """Run a pending import job with the registered Context (or a freshly opened one)."""
    from siyu.services.imports import runner

    ctx, own = _context(ctx_key)
    try:
        return runner.execute_job(ctx, job_id).status
    finally:
        if own:
            ctx.close()


def register(huey: Huey) -> None:
    """Attach siyu's tasks to a Huey instance."""
    _TASKS[(id(huey), IMPORT_TASK)] = huey.task(name=IMPORT_TASK)(run_import_job)
    _TASKS[(id(huey), CALL_TASK)] = huey.task(name=CALL_TASK)(call)


def enqueue_import(ctx: Context, job_id: str) -> None:
    """Queue an import job on the Context's Huey queue."""
    from siyu.workers.queue import context_key, get_huey

    huey = get_huey(ctx.settings)
    _TASKS[(id(huey), IMPORT_TASK)](context_key(ctx.settings), job_id)


def enqueue_call(ctx: Context, target: str, *args: Any, **kwargs: Any) -> None:
    """Run ``target`` ("package.module:function") in the background as ``function(ctx, *args, **kwargs)``.

    Arguments must pickle. The function runs in the consumer (inside the API process by default) with that
    process's registered Context for the same data directory. Any area can queue work this way.
    """
    from siyu.workers.queue import context_key, get_huey

    module_name, sep, func_name = target.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"target {target!r} must look like 'package.module:function'")
    huey = get_huey(ctx.settings)
    _TASKS[(id(huey), CALL_TASK)](context_key(ctx.settings), target, args, kwargs)
