"""Serve the real app with uvicorn on a random 127.0.0.1 port, in a background thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.postgres import free_port


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Yield the base URL of a running server for ``app``; shut it down afterwards."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("live server did not start")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_process(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """``siyu serve`` as its own process on ``port`` over ``data_dir`` (scheduler off), once it answers /healthz —
    for tests that kill it with kill -9."""
    env = {**os.environ, "SIYU_DATA_DIR": str(data_dir), "SIYU_SCHEDULER": "off"}
    siyu = str(Path(sys.executable).parent / "siyu")
    proc = subprocess.Popen(
        [siyu, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("siyu did not start")


def api_login(base: str, username: str, password: str) -> dict[str, str]:
    """Log in through ``POST /api/auth/login`` (asserting it succeeds); returns the bearer-token headers."""
    resp = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password}, timeout=60)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def all_answering(url: str, workers: int) -> None:
    """Wait until ``workers`` distinct processes have answered /healthz on fresh connections (the first answers
    while the others are still importing)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    while len(seen) < workers:
        assert time.monotonic() < deadline, f"only {len(seen)} of {workers} workers answer"
        try:
            seen.add(httpx.get(f"{url}/healthz", timeout=10).json()["pid"])
        except httpx.ConnectError:  # a worker's socket may be listed before it accepts
            time.sleep(0.1)
