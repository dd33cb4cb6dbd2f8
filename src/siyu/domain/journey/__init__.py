"""Journeys (SOP / 客户旅程): the definition language, its validation and the pure step logic (no I/O)."""

from siyu.domain.journey.definition import SCHEMA_VERSION, JourneyDefinition
from siyu.domain.journey.validate import JourneyError, parse_journey

__all__ = ["SCHEMA_VERSION", "JourneyDefinition", "JourneyError", "parse_journey"]
