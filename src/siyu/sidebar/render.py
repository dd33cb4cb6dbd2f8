"""Jinja2 templates of the sidebar (autoescaped; loaded once)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("siyu.sidebar", "templates"), autoescape=select_autoescape(["html"]))


def render(name: str, **values: Any) -> str:
    """The page ``templates/<name>`` rendered with ``values``."""
    return _env().get_template(name).render(**values)
