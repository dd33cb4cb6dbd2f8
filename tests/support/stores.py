"""Ready-made data directories for tests, built once per test process and handed out as file copies.

A fresh ``Context.open`` migrates the state DB and creates the warehouse from nothing (one to three seconds on
shared CPUs) and ``seed_demo`` takes several more; a copy of the finished files takes milliseconds and opens at the
migration head. Each caller gets its own copy, so a test may write to it freely.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.demo import DemoConfig

_LOCK = threading.Lock()
_TEMPLATES: dict[str, Path] = {}
_ROOT: list[Path] = []


def _root() -> Path:
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="siyu-test-templates-")))
        atexit.register(shutil.rmtree, _ROOT[0], True)
    return _ROOT[0]


def _template(key: str, build: Callable[[Context], object]) -> Path:
    """The data dir of ``key``, built by ``build`` on a fresh Context the first time it is asked for."""
    with _LOCK:
        if key not in _TEMPLATES:
            data = _root() / f"t{len(_TEMPLATES)}" / "data"
            ctx = Context.open(Settings(data_dir=data))
            try:
                build(ctx)
            finally:
                ctx.close()  # DuckDB checkpoints and SQLite folds its journal: the files are complete
            _TEMPLATES[key] = data
        return _TEMPLATES[key]


def _copy(template: Path, dest: Path) -> Path:
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: a template is copied into a new directory only")
    shutil.copytree(template, dest, dirs_exist_ok=True)
    return dest


def empty_data_dir(dest: Path) -> Path:
    """Fill ``dest`` (new or empty) with migrated, empty stores (state.sqlite + warehouse.duckdb); returns it."""
    return _copy(_template("empty", lambda ctx: None), dest)


def demo_data_dir(dest: Path, cfg: DemoConfig) -> Path:
    """Fill ``dest`` with stores holding the demo brand ``cfg`` (seeded and OneID-resolved once per process)."""
    from siyu.services.demo import seed_demo

    return _copy(_template(f"demo:{cfg!r}", lambda ctx: seed_demo(ctx, cfg)), dest)


def open_demo(data_dir: Path, cfg: DemoConfig, **settings: object) -> Context:
    """An open Context on a private copy of the demo brand ``cfg`` in ``data_dir`` (extra ``Settings`` fields
    as keywords)."""
    demo_data_dir(data_dir, cfg)
    return Context.open(Settings(data_dir=data_dir, **settings))  # type: ignore[arg-type]
