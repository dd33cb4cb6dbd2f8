"""The catalogue of metric definitions: one entry per metric, with its formula in Chinese and English.

Each analytics module registers its metrics with ``define`` at import; the API (``/api/metrics/definitions``)
and the console's "how this is computed" panels read them from here, so the text shown to operators sits next
to the code that computes the number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Unit = Literal["count", "ratio", "currency", "days", "weeks", "score", "label"]


@dataclass(frozen=True)
class MetricDefinition:
    """A metric's name, formula and unit (``module`` is where its Ibis expression lives)."""

    key: str
    zh: str
    en: str
    formula_zh: str
    formula_en: str
    unit: Unit
    module: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


DEFINITIONS: dict[str, MetricDefinition] = {}


def define(key: str, zh: str, en: str, formula_zh: str, formula_en: str, unit: Unit, module: str) -> MetricDefinition:
    """Register a metric definition (a key may be defined once)."""
    if key in DEFINITIONS and DEFINITIONS[key].module != module:
        raise ValueError(f"metric {key!r} is already defined in {DEFINITIONS[key].module}")
    d = MetricDefinition(key, zh, en, formula_zh, formula_en, unit, module)
    DEFINITIONS[key] = d
    return d


# analytics modules that register definitions (each area adds its module here)
MODULES: tuple[str, ...] = (
    "rfm",
    "aipl",
    "lifecycle",
    "cohorts",
    "acquisition",
    "guides",
    "baselines",
    "assets",
    "performance",
    "funnel",
    "segments",
    "clv_summary",
    "clv_fields",
    "guide_work",
)


def all_definitions() -> list[MetricDefinition]:
    """Every registered definition (imports the analytics modules first), sorted by key."""
    import importlib

    for name in MODULES:
        importlib.import_module(f"siyu.analytics.{name}")
    return sorted(DEFINITIONS.values(), key=lambda d: d.key)
