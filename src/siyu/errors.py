"""Errors with a message fit for the user (what is wrong and how to fix it) and the field it concerns.

Pure (no I/O): the domain raises them too; the API maps them to HTTP status codes, the CLI to messages.
"""

from __future__ import annotations


class SiyuError(Exception):
    """Base class: ``str(err)`` is a message fit for the user (what is wrong and how to fix it)."""

    status_code = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(SiyuError):
    status_code = 404


class TooManyRequests(SiyuError):
    """A rate limit was hit (HTTP 429); the message says when to retry."""

    status_code = 429


class Forbidden(SiyuError):
    status_code = 403


class Unauthorized(SiyuError):
    status_code = 401


class Conflict(SiyuError):
    status_code = 409
