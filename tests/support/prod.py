"""Pieces of the production-mode tests: fresh PostgreSQL state, a webhook receiver, `siyu worker` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

from siyu.stores.state.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
SIYU = str(Path(sys.executable).parent / "siyu")


def fresh_postgres(url: str) -> str:
    """Empty the public schema of the session's PostgreSQL database; returns ``url``."""
    engine = make_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()
    return url


class Receiver:
    """A local webhook endpoint: records each POST's ``seq`` (payload) and ``X-Siyu-Delivery`` id."""

    def __init__(self) -> None:
        self.seqs: Counter[int] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.lock:
                    outer.seqs[int(json.loads(body)["seq"])] += 1
                    outer.deliveries[self.headers.get("X-Siyu-Delivery", "")] += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prod_env(data: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a production-mode process (PostgreSQL state, Huey on Redis)."""
    return {
        **os.environ,
        "SIYU_DATA_DIR": str(data),
        "SIYU_DATABASE_URL": database_url,
        "SIYU_REDIS_URL": redis_url,
        "SIYU_SCHEDULER": "off",
    }


def start_worker(env: dict[str, str], log: Path, workers: int = 2) -> subprocess.Popen[bytes]:
    """``siyu worker`` as its own process, once it says it is consuming."""
    out = open(log, "wb")  # noqa: SIM115 - the child keeps writing to it
    proc = subprocess.Popen([SIYU, "worker", "--workers", str(workers)], env=env, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"siyu worker:" in log.read_bytes():
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"siyu worker exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("siyu worker did not start")


def wait_until(predicate: object, timeout: float, step: float = 0.2) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(step)
    return bool(predicate())  # type: ignore[operator]


def start_api(env: dict[str, str], port: int, log: Path, consumer: bool = False) -> subprocess.Popen[bytes]:
    """``siyu serve`` as its own process, once it answers; ``consumer``: its embedded Huey consumer takes jobs
    from the queue too (the process that writes the DuckDB warehouse must run the jobs that write it)."""
    env = {**env, "SIYU_HUEY_CONSUMER": "embedded" if consumer else "off"}
    return start_siyu(["serve"], env, port, log, 60)


def start_siyu(args: list[str], env: dict[str, str], port: int, log: Path, timeout: float) -> subprocess.Popen[bytes]:
    """``siyu <args> --port <port>`` as its own process (output to ``log``), once ``/healthz`` answers 200."""
    import httpx

    out = open(log, "wb")  # noqa: SIM115 - the child keeps writing to it
    proc = subprocess.Popen([SIYU, *args, "--port", str(port)], env=env, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"siyu {args[0]} exited: {log.read_text()[-2000:]}")
    proc.kill()
    raise RuntimeError(f"siyu {args[0]} did not start")


def restart_postgres(url: str, down_seconds: float) -> None:
    """Stop the PostgreSQL server behind ``url`` (fast shutdown: sessions are cut), wait, start it again."""
    from tests.support.postgres import _as_postgres, _bin

    engine = make_engine(url)
    with engine.connect() as con:
        data, port, sockets = con.execute(
            sa.text(
                "SELECT current_setting('data_directory'), current_setting('port'), "
                "current_setting('unix_socket_directories')"
            )
        ).one()
    engine.dispose()
    pg_ctl = _bin("pg_ctl")
    subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"]), check=True, capture_output=True)
    time.sleep(down_seconds)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    logfile = str(Path(data).parent / "log")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", data, "-o", opts, "-l", logfile, "-w", "start"]), check=True, capture_output=True
    )
