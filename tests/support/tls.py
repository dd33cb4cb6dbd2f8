"""One default TLS context for every httpx client a test process builds.

``httpx.get``/``post``/… build a new Client per call and each Client loads certifi's CA bundle into a new SSL
context: 25–40 ms of CPU on a quiet machine, 300+ ms on busy shared cores, for requests that are plain HTTP to
127.0.0.1 anyway. The tests make thousands of such calls (the route sweeps alone several hundred), so the test
session builds the default context (``verify=True``, no client certificate) once and hands the same one out.
A client given its own ``verify=`` context or a certificate still gets exactly what it asked for.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import httpx._transports.default as _transport

_LOCK = threading.Lock()
_SHARED: list[ssl.SSLContext] = []


def share_default_tls_context() -> None:
    """Make httpx reuse one default SSL context in this process (idempotent)."""
    original = _transport.create_ssl_context
    if getattr(original, "siyu_shared", False):
        return

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        with _LOCK:
            if not _SHARED:
                _SHARED.append(original(verify=True, cert=None, trust_env=trust_env))
            return _SHARED[0]

    create_ssl_context.siyu_shared = True  # type: ignore[attr-defined]
    _transport.create_ssl_context = create_ssl_context  # type: ignore[assignment]
