"""Parsed journey definitions by (journey, version): versions never change once saved, so they are cached."""

from __future__ import annotations

import threading

from siyu.domain.journey import JourneyDefinition, parse_journey
from siyu.services.context import Context

_lock = threading.Lock()
_CACHE: dict[tuple[str, str, int], JourneyDefinition] = {}


def definition(ctx: Context, journey_id: str, version: int) -> JourneyDefinition:
    """The parsed definition of one version of a journey."""
    key = (str(ctx.settings.data_dir), journey_id, version)
    with _lock:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    from siyu.services.journeys.definitions import definition_of

    jd = parse_journey(definition_of(ctx, journey_id, version))
    with _lock:
        if len(_CACHE) > 2000:
            _CACHE.clear()
        _CACHE[key] = jd
    return jd
