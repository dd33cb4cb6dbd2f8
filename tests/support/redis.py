"""Start a throw-away Redis server (127.0.0.1, random port, temp dir, AOF on) for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import free_port

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class RedisServer:
    """A private redis-server process; ``restart()`` stops it (SIGTERM or kill -9) and starts it on the same port."""

    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = REDIS_SERVER if Path(REDIS_SERVER).exists() else shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found: install the Debian package 'redis-server' (.ci/run does)")
        # the documented production persistence: AOF, fsync once a second (a crash loses at most ~1 s of writes)
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(30)
        self.proc = None

    def restart(self, kill: bool = False, down_seconds: float = 0.0) -> None:
        self.stop(kill=kill)
        time.sleep(down_seconds)
        self.start()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Yield a running private Redis server; stop it and delete its files afterwards."""
    server = RedisServer(free_port(), Path(tempfile.mkdtemp(prefix="siyu-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)
        shutil.rmtree(server.directory, ignore_errors=True)
