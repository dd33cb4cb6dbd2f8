"""The durable ingest log: a 200 survives kill -9 of the server (recovered exactly once by the next process),
a torn segment tail is ignored, and the loader records its position so nothing is loaded twice."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa

from siyu.config import Settings
from siyu.domain.segment import EventRow
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.ingest import log as ingest_log
from siyu.services.ingest.batches import build_batch

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _siyu() -> str:
    exe = Path(sys.executable).parent / "siyu"
    return str(exe) if exe.exists() else (shutil.which("siyu") or "siyu")


def _serve_post_and_kill(data_dir: Path, key: str, tag: str, batches: int, loader: bool) -> int:
    """Start `siyu serve`, post batches of 50 until all are acknowledged, kill -9 it; returns events acked."""
    port = _port()
    env = {**os.environ, "SIYU_DATA_DIR": str(data_dir), "SIYU_INGEST_LOADER": "on" if loader else "off"}
    proc = subprocess.Popen([_siyu(), "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        acked = 0
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            for b in range(batches):
                batch = [
                    {
                        "type": "identify",
                        "messageId": f"{tag}-{b}-{i}",
                        "userId": f"{tag}-u{b}-{i}",
                        "anonymousId": f"a{b}{i}",
                    }
                    for i in range(50)
                ]
                r = http.post("/v1/batch", json={"batch": batch})
                assert r.status_code == 200, r.text
                acked += 50
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    return acked


def test_acknowledged_events_survive_kill_9_and_load_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    ctx = Context.open(settings)
    create_brand(ctx, "acme", "Acme")
    _, key = write_keys.create_key(ctx, "acme")
    ctx.close()

    loaded_run = _serve_post_and_kill(data, key, "a", 20, loader=True)  # loaded, then killed mid-segment
    unloaded_run = _serve_post_and_kill(data, key, "b", 20, loader=False)  # only in the log when killed
    # the second server loaded what the first left (at startup); its own segment is still there, unloaded
    assert len(ingest_log.segments(data / ingest_log.LOG_DIR_NAME)) == 1

    ctx = Context.open(settings)  # recovery runs here
    try:
        count, distinct = ctx.warehouse.fetch("SELECT count(*), count(DISTINCT message_id) FROM events")[0]
        assert count == distinct == loaded_run + unloaded_run
        assert ctx.warehouse.fetch("SELECT count(*) FROM identity_observations")[0][0] == count
        assert ingest_log.segments(data / ingest_log.LOG_DIR_NAME) == []  # loaded segments are deleted
        assert ctx.warehouse.fetch("SELECT count(*) FROM ingest_log_loaded")[0][0] == 0
    finally:
        ctx.close()


def _rows(tag: str, n: int) -> list[EventRow]:
    return [
        EventRow(f"{tag}{i}", "track", "E", None, f"u{i}", None, None, None, None, None, None, 1, None, None, 1, None)
        for i in range(n)
    ]


def test_a_torn_tail_is_ignored_and_complete_batches_load(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    create_brand(ctx, "acme", "Acme")
    ctx.close()
    seg = ingest_log.SegmentLog(settings.data_dir / ingest_log.LOG_DIR_NAME)
    name, first = seg.append([build_batch("acme", "k", _rows("x", 3)), build_batch("acme", "k", _rows("y", 2))])
    assert first == 0
    path = seg.directory / name
    size = path.stat().st_size
    seg.append([build_batch("acme", "k", _rows("z", 4))])
    with open(path, "r+b") as f:  # a crash in the middle of writing the third batch
        f.truncate(size + (path.stat().st_size - size) // 2)
    assert [b.num_rows for b in ingest_log.read_batches(path)] == [3, 2]
    ctx = Context.open(settings)
    try:
        ids = {r[0] for r in ctx.warehouse.fetch("SELECT message_id FROM events")}
        assert ids == {"x0", "x1", "x2", "y0", "y1"}
    finally:
        ctx.close()


def test_the_recorded_position_is_honoured(tmp_path: Path) -> None:
    """A segment whose first batch is recorded as loaded: recovery loads only the second (no careful path)."""
    from siyu.services.ingest import writer

    settings = Settings(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    create_brand(ctx, "acme", "Acme")
    seg = ingest_log.SegmentLog(settings.data_dir / ingest_log.LOG_DIR_NAME)
    b1, b2 = build_batch("acme", "k", _rows("p", 2)), build_batch("acme", "k", _rows("q", 3))
    name, _ = seg.append([b1, b2])
    stored, _obs, careful = writer.load_table(ctx, pa.Table.from_batches([b1]), {name: 1})
    assert (stored, careful) == (2, False)
    assert writer.recover_log(ctx) == 3
    assert ctx.warehouse.fetch("SELECT count(*) FROM events")[0][0] == 5
    ctx.close()
