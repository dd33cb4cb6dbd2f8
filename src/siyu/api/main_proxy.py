"""Handing a request to the main siyu process over HTTP (used by ``siyu serve-public``): the same method, path,
query, headers and body; the visitor's address in ``X-Forwarded-For`` (the main process trusts loopback
proxies); the answer streamed back unchanged. When the main process does not answer: 502 with what to check."""

from __future__ import annotations

import httpx
from starlette.types import Scope, Send

from siyu.api.asgi_body import send_text

# hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy sets itself
_DROP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
_DROP_REQUEST = _DROP | {b"host", b"x-forwarded-for", b"content-length"}


class MainProxy:
    """A pooled HTTP client to the main process at ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            # idle connections are dropped before uvicorn's 5 s keep-alive closes them under us
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0),
            follow_redirects=False,
        )

    async def forward(self, scope: Scope, body: bytes, send: Send) -> None:
        """Send the request of ``scope`` with ``body`` to the main process; stream its answer to ``send``."""
        headers = [(k, v) for k, v in scope.get("headers") or () if k.lower() not in _DROP_REQUEST]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", client[0].encode()))
        url = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            url += b"?" + scope["query_string"]
        request = self.client.build_request(scope["method"], url.decode("latin-1"), headers=headers, content=body)
        try:
            try:
                answer = await self.client.send(request, stream=True)
            except (httpx.RemoteProtocolError, httpx.ConnectError):  # a pooled connection closed under us: once more
                answer = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await _unreachable(send, self.base_url, exc)
            return
        try:
            out = [(k, v) for k, v in answer.headers.raw if k.lower() not in _DROP]
            await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await answer.aclose()

    async def close(self) -> None:
        """Close the pooled connections."""
        await self.client.aclose()


async def _unreachable(send: Send, base_url: str, exc: Exception) -> None:
    text = (
        f"the main siyu process at {base_url} did not answer ({type(exc).__name__}); "
        "check that `siyu serve` runs there (siyu serve-public --main-url)"
    )
    await send_text(send, 502, text)
