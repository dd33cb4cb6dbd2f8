"""The local WeCom server of `siyu demo up` (``siyu.services.demo.local_wecom``) as its own process: a port already
taken is a clear error (not a silent pairing with whatever answers there, e.g. a server left by an earlier demo
with another brand's keys), and the server never outlives the process that started it, even one killed by SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from siyu.errors import Conflict
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.demo import local_wecom
from tests.support.postgres import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purpose
        return f.read().split(") ")[1][0] != "Z"


def test_a_taken_port_is_named_in_the_error(ctx: Context) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert not local_wecom.port_free(port)
        with pytest.raises(Conflict, match=f"port {port} of the local WeCom server is in use") as err:
            local_wecom.start(ctx, "acme", port, "http://127.0.0.1:9")
        assert err.value.field == "wecom_port" and "--wecom-port 0" in err.value.message
    assert local_wecom.port_free(port)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_server_goes_when_its_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from siyu.config import Settings
                from siyu.services import brands
                from siyu.services.context import Context
                from siyu.services.demo import local_wecom
                ctx = Context.open(Settings(data_dir=Path({str(tmp_path / "data")!r})))
                brands.create_brand(ctx, "acme", "Acme")
                proc = local_wecom.start(ctx, "acme", {port}, "http://127.0.0.1:9")
                print(proc.pid, flush=True)
                time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child) and not local_wecom.port_free(port)
        parent.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel can stop the child now
        parent.wait(timeout=10)
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
        assert local_wecom.port_free(port)
    finally:
        parent.kill()
        if child and _alive(child):  # the behaviour under test failed: leave no server behind
            os.kill(child, signal.SIGKILL)
