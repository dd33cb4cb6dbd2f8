"""Keep secrets out of logs: HTTP client loggers (httpx, httpcore) print request URLs, and WeCom puts
``corpsecret`` and ``access_token`` in the query string. A filter masks such values before any handler sees them."""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("corpsecret", "secret", "access_token", "password", "passwd", "key", "token", "signature", "sign")
_PATTERN = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMS) + r")=([^&\s\"']+)")
LOGGERS = ("httpx", "httpcore", "urllib3", "uvicorn.access")


def redact(text: str) -> str:
    """``text`` with the values of secret-looking query parameters replaced by ``***``."""
    return _PATTERN.sub(lambda m: f"{m.group(1)}=***", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message with secret query values masked (the record is formatted once, here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Attach the filter to the HTTP client and access loggers (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
