"""The demo brand against the local WeCom server (``tests/wecom_server``, which follows WeCom's documented protocol).

``make demo`` starts it beside siyu, registers the demo guides' WeCom userids as its members and points the
brand's WeCom configuration at it, so an operator can create a channel code and "scan" it as a simulated customer
(``POST http://127.0.0.1:<port>/_sim/scan?config_id=…``) and watch the callback arrive.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import httpx

from siyu.errors import Conflict, NotFound
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, get_config, set_config

LOCAL_CORP_ID = "wwlocal0000000001"
LOCAL_SECRET = "contact-secret"
REPO_ROOT = Path(__file__).resolve().parents[4]
BEHAVIOR_DAYS = 180  # as far back as WeCom answers: the demo's data ends before today


def server_available() -> bool:
    """True in a source checkout, where ``tests/wecom_server`` exists."""
    return (REPO_ROOT / "tests" / "wecom_server" / "__main__.py").exists()


def ensure_config(ctx: Context, brand_id: str, port: int) -> WeComConfig:
    """The brand's WeCom configuration pointing at the local server (token and AES key kept across restarts)."""
    api_base = f"http://127.0.0.1:{port}"
    try:
        cfg = get_config(ctx, brand_id)
        if cfg.api_base == api_base and cfg.corp_id == LOCAL_CORP_ID:
            return cfg
    except NotFound:
        pass
    key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))  # like WeCom's keys
    cfg = WeComConfig(LOCAL_CORP_ID, "demo" + secrets.token_hex(8), key, secret=LOCAL_SECRET, api_base=api_base)
    return set_config(ctx, brand_id, cfg)


def guide_userids(ctx: Context, brand_id: str) -> list[str]:
    """The brand's guides' WeCom userids."""
    with ctx.warehouse.transaction() as cur:
        rows = cur.execute(
            "SELECT wecom_userid FROM guides WHERE brand_id = ? AND wecom_userid IS NOT NULL ORDER BY guide_id",
            [brand_id],
        ).fetchall()
    return [str(r[0]) for r in rows]


def start(ctx: Context, brand_id: str, port: int, siyu_base: str, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """Start the local WeCom server for ``brand_id`` and wait until it answers."""
    cfg = ensure_config(ctx, brand_id, port)
    members = ",".join(guide_userids(ctx, brand_id))
    args = [
        *("--port", str(port), "--guides", "0", "--contacts", "0", "--members", members),
        *("--corpid", cfg.corp_id, "--secret", cfg.secret),
        *("--callback-url", f"{siyu_base}/api/wecom/callback/{brand_id}"),
        *("--token", cfg.token, "--aes-key", cfg.encoding_aes_key),
        *("--behavior-days", str(BEHAVIOR_DAYS)),  # the guides' 联系客户统计, for their scorecard
    ]
    if not port_free(port):  # else the wait below would take whoever answers there for the server it started
        raise Conflict(
            f"port {port} of the local WeCom server is in use (a local WeCom server left by an earlier "
            "`siyu demo up`?); stop what listens there, pick another with --wecom-port, or run without it "
            "(--wecom-port 0)",
            field="wecom_port",
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.wecom_server", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local WeCom server exited with code {proc.returncode} (port {port} in use?)")
        try:
            httpx.get(f"{cfg.api_base}/_sim/stats", timeout=1.0)
            if proc.poll() is None:  # it was ours that answered
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the local WeCom server did not answer on port {port} within {timeout:.0f} s")


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port`` (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """In the server's process before it runs (Linux): the kernel sends it SIGTERM when `siyu demo up` dies, even
    by SIGKILL, so no local WeCom server outlives the demo holding its port and an old configuration."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
