"""Errors raised by services (defined in ``siyu.errors`` so the pure domain can raise them too)."""

from siyu.errors import Conflict, Forbidden, NotFound, SiyuError, Unauthorized

__all__ = ["Conflict", "Forbidden", "NotFound", "SiyuError", "Unauthorized"]
