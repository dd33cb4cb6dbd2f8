"""siyu.api.reuseport: worker sockets share a port; a port taken by another program is a clear error up front."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from siyu.api.reuseport import PortUnavailable, listening_socket
from tests.support.postgres import free_port


def test_worker_sockets_share_one_port() -> None:
    port = free_port()
    a, b = listening_socket("127.0.0.1", port), listening_socket("127.0.0.1", port)
    try:
        a.listen()
        b.listen()
        assert a.getsockname() == b.getsockname() == ("127.0.0.1", port)
    finally:
        a.close()
        b.close()


def test_a_port_taken_by_another_program_is_named_before_any_worker_starts() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortUnavailable, match=f"127.0.0.1:{port}.*--port"):
            listening_socket("127.0.0.1", port)
        app = "siyu.api.public_app:app_from_env"
        cmd = [sys.executable, "-m", "siyu.api.reuseport", app, "127.0.0.1", str(port), "2"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    finally:
        taken.close()
