"""Disk full under the data directory (a small tmpfs): ingestion answers 507 naming the cause and loses nothing it
acknowledged; once space is freed it acknowledges and loads again, by itself."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.ingest import wait_loaded
from tests.support.live import live_server


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs mounted for this test (root only; skipped with the reason otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        small = b"\0" * 4096
        try:
            while True:
                f.write(small)
        except OSError:
            pass


def _batch(ids: list[str]) -> dict[str, object]:
    return {
        "batch": [{"type": "track", "event": "Viewed", "userId": f"u{i}", "messageId": m} for i, m in enumerate(ids)]
    }


@pytest.mark.slow  # ~35 s on 2 shared cores
def test_full_disk_gives_507_and_loses_nothing_acknowledged(small_disk: Path) -> None:
    ctx = Context.open(Settings(data_dir=small_disk / "data"))
    acked: list[str] = []
    refused: list[httpx.Response] = []
    try:
        create_brand(ctx, "df", "Disk full")
        _, secret = write_keys.create_key(ctx, "df", "test")
        with live_server(create_app(ctx, with_console=False)) as base, httpx.Client(auth=(secret, "")) as http:

            def send(n: int = 50) -> httpx.Response:
                ids = [uuid.uuid4().hex for _ in range(n)]
                t0 = time.monotonic()
                r = http.post(base + "/v1/batch", json=_batch(ids), timeout=30)
                assert time.monotonic() - t0 < 10, "a request hung on the full disk"
                if r.status_code == 200:
                    acked.extend(ids)
                else:
                    refused.append(r)
                return r

            for _ in range(10):
                assert send().status_code == 200
            filler = small_disk / "filler"
            _fill(filler)
            for _ in range(20):
                send()
            assert refused, "nothing was refused on a full disk"
            for r in refused:
                assert r.status_code == 507, r.text
                body = r.json()
                assert body["field"] == "storage" and "disk is full" in body["error"], body
                assert "Traceback" not in r.text
            os.unlink(filler)
            # space is back: ingestion acknowledges again without a restart
            for _ in range(10):
                assert send().status_code == 200
            assert wait_loaded(ctx, 60)
            deadline = time.monotonic() + 60
            stored: set[str] = set()
            while time.monotonic() < deadline:
                stored = {str(m) for (m,) in ctx.warehouse.fetch("SELECT message_id FROM events WHERE brand_id = 'df'")}
                if set(acked) <= stored:
                    break
                time.sleep(0.5)
            assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged events lost"
            n = ctx.warehouse.fetch("SELECT count(*), count(DISTINCT message_id) FROM events WHERE brand_id = 'df'")
            assert n[0][0] == n[0][1]  # none twice
    finally:
        ctx.close()
    # what the log holds loads again after a restart too (nothing stranded in an abandoned segment)
    again = Context.open(Settings(data_dir=small_disk / "data"))
    try:
        stored = {str(m) for (m,) in again.warehouse.fetch("SELECT message_id FROM events WHERE brand_id = 'df'")}
        assert set(acked) <= stored
    finally:
        again.close()
