"""N uvicorn worker processes on one port, each with a listening socket of its own (``SO_REUSEPORT``).

uvicorn's ``--workers`` share one listening socket. When a burst opens its connections at once, the worker that
wakes first accepts most of them, and a kept-alive connection (a reverse proxy's upstream pool) stays with it: one
core then does two thirds of the work while the other waits. With a socket per worker the kernel spreads new
connections over the workers by their addresses' hash. This supervisor starts the workers, restarts one that
dies, and stops them all on SIGINT / SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)
RESTARTS = 5  # a worker dying this many times within RESTART_WINDOW seconds stops the supervisor
RESTART_WINDOW = 60.0


class PortUnavailable(RuntimeError):
    """The port cannot be bound (in use by a program without SO_REUSEPORT, or not ours to bind)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What each worker serves: ``app`` (``module:factory``, a uvicorn factory) on ``host``:``port``."""

    app: str
    host: str
    port: int
    log_level: str = "warning"


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket on ``host``:``port`` that other sockets of this user may share (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from exc
    return sock


def _worker(spec: WorkerSpec) -> None:
    """One worker process: its own socket, uvicorn serving ``spec.app`` on it (spawned: a fresh interpreter)."""
    import uvicorn

    from siyu.api.coalesce import CoalescingHttpTools

    sock = listening_socket(spec.host, spec.port)
    # no access log: at the level we run it is never shown, yet uvicorn formats its arguments per request
    # writes coalesced per loop turn: an answer's head and body in one send (siyu.api.coalesce)
    config = uvicorn.Config(
        spec.app, factory=True, log_level=spec.log_level, backlog=2048, access_log=False, http=CoalescingHttpTools
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve(spec: WorkerSpec, workers: int) -> None:
    """Run ``workers`` processes serving ``spec`` until SIGINT / SIGTERM; a worker that dies is started again (the
    supervisor gives up, stopping the others, when one dies ``RESTARTS`` times within ``RESTART_WINDOW`` s)."""
    listening_socket(spec.host, spec.port).close()  # a clear error now rather than workers dying one by one
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        proc = spawn.Process(target=_worker, args=(spec,), daemon=False)
        proc.start()
        return proc

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs = [start() for _ in range(workers)]
    deaths: list[float] = []
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                if proc.is_alive() or stop.is_set():
                    continue
                now = time.monotonic()
                deaths = [t for t in deaths if now - t < RESTART_WINDOW] + [now]
                if len(deaths) >= RESTARTS:
                    raise RuntimeError(f"workers of {spec.app} keep dying (exit code {proc.exitcode}); see the log")
                log.warning("worker %s exited with %s; starting another", proc.pid, proc.exitcode)
                procs[i] = start()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # uvicorn finishes the requests it has, then runs the app's shutdown
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str]) -> None:
    """``python -m siyu.api.reuseport APP HOST PORT WORKERS``: what the CLI execs, so that the spawned workers
    re-import this small module as their ``__main__``, not the whole CLI."""
    app, host, port, workers = argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        serve(WorkerSpec(app, host, int(port)), int(workers))
    except (PortUnavailable, RuntimeError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
