"""The public workers' coalescing transport: writes of one loop turn leave as one send, closing sends what is
pending first, and uvicorn over it answers kept-alive, large and HEAD requests as usual."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from siyu.api.coalesce import CoalescingHttpTools, CoalescingTransport
from tests.support.postgres import free_port


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    b.setblocking(False)
    return a, b


def _pending(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_writes_of_one_turn_leave_together_after_it() -> None:
    a, b = _pair()

    async def go() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        t = CoalescingTransport(transport, loop)
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        before = _pending(b)  # nothing sent within the turn
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        after = _pending(b)
        t.write(b"bye")
        t.close()  # pending writes go before the close
        await asyncio.sleep(0.05)
        return before, after + _pending(b)

    before, after = asyncio.run(go())
    b.close()
    assert before == b"" and after == b"HTTP/1.1 200 OK\r\n\r\nbodybye"


def _app() -> Starlette:
    async def echo(request: Request) -> Response:
        n = int(request.query_params.get("n", "5"))
        return PlainTextResponse("x" * n, headers={"X-Seen": request.url.path})

    return Starlette(routes=[Route("/e", echo, methods=["GET", "HEAD", "POST"])])


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(_app(), host="127.0.0.1", port=port, log_level="warning", http=CoalescingHttpTools)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/e", timeout=1)
            break
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    yield base
    srv.should_exit = True
    thread.join(10)


def test_uvicorn_over_it_answers_as_usual(server: str) -> None:
    with httpx.Client(base_url=server) as client:  # one kept-alive connection
        for n in (0, 1, 5, 3_000_000):  # a large body spans many sends and the flow control
            r = client.get(f"/e?n={n}")
            assert r.status_code == 200 and r.text == "x" * n and r.headers["x-seen"] == "/e"
        head = client.head("/e?n=7")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "7"
        assert client.post("/e?n=2", content=b"p" * 100_000).text == "xx"
        assert client.get("/nope").status_code == 404
