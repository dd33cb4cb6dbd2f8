"""Load client for bench/ingest.py: keep-alive HTTP connections posting Segment batches of 100 events.

Usage: python -m bench.ingest_client BASE_URL WRITE_KEY SECONDS CONNECTIONS [RATE [TAG]]  → JSON on stdout.
About 1% of batches are sent twice on purpose (a retry) to prove deduplication.

Without RATE the connections send back to back (closed loop: the server's maximum throughput).  With RATE
(events/s over all connections) each connection sends on a fixed schedule (open loop) and latency is measured
from the scheduled send time, so a stalled server is charged for the requests it delayed (no coordinated
omission).  TAG prefixes message ids so several runs against one server do not collide.
"""

from __future__ import annotations

import base64
import http.client
import random
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import orjson

BATCH = 100
RESEND_RATE = 0.01


SEQ_MARK = b"#SEQ###"  # 7 bytes, replaced by the zero-padded batch number at send time
TEMPLATES = 64


def make_batch(conn: int, seq: int | None, rng: random.Random, tag: str = "") -> bytes:
    """A batch of 100 events: mostly track, some page, a few identify carrying a phone (OneID evidence).

    With ``seq=None`` the message ids carry ``SEQ_MARK`` so the body can be reused as a template.
    """
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events: list[dict[str, Any]] = []
    for i in range(BATCH):
        user = f"user-{rng.randrange(200_000)}"
        mid = f"{tag}c{conn}-{'#SEQ###' if seq is None else f'{seq:07d}'}-{i:03d}"
        r = i % 20
        if r == 0:
            ev: dict[str, Any] = {
                "type": "identify",
                "userId": user,
                "anonymousId": f"anon-{user}",
                "traits": {"phone": f"1380{rng.randrange(10_000_000):07d}", "name": "客户", "city": "上海"},
            }
        elif r == 1:
            ev = {"type": "page", "anonymousId": f"anon-{user}", "name": "Home", "properties": {"path": "/"}}
        else:
            ev = {
                "type": "track",
                "userId": user,
                "event": "Product Viewed",
                "properties": {"sku": f"SKU-{rng.randrange(5000)}", "price": 99.0, "currency": "CNY"},
            }
        ev["messageId"] = mid
        ev["timestamp"] = now
        ev["context"] = {"library": {"name": "bench", "version": "1"}, "ip": "10.0.0.1"}
        events.append(ev)
    return orjson.dumps({"batch": events, "sentAt": now})


def worker(
    conn: int,
    base: str,
    key: str,
    deadline: float,
    out: dict[str, Any],
    lock: threading.Lock,
    interval: float | None = None,
    tag: str = "",
) -> None:
    url = urlparse(base)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json", "Connection": "keep-alive"}
    rng = random.Random(conn)
    templates = [make_batch(conn, None, rng, tag) for _ in range(TEMPLATES)]  # keep the client's CPU off the clock
    hc = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    lat: list[float] = []
    acked: list[int] = []
    acked_events = errors = resent = 0
    statuses: dict[int, int] = {}
    seq = 0
    last: tuple[int, bytes] | None = None
    scheduled = time.monotonic() + (rng.random() * interval if interval else 0.0)  # spread the connections
    while time.monotonic() < deadline:
        if interval is not None:
            pause = scheduled - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        if last is not None and rng.random() < RESEND_RATE:
            this_seq, body = last
            resent += 1
        else:
            seq += 1
            this_seq, body = seq, templates[seq % TEMPLATES].replace(SEQ_MARK, b"%07d" % seq)
        t0 = time.perf_counter()
        if interval is not None:  # charge the wait of a request the server kept us from sending on time
            t0 -= max(0.0, time.monotonic() - scheduled)
            scheduled += interval
        try:
            hc.request("POST", "/v1/batch", body, headers)
            resp = hc.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            hc.close()
            hc = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
            continue
        lat.append(time.perf_counter() - t0)
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.status == 200:
            acked.append(this_seq)
            acked_events += BATCH
            last = (this_seq, body)
        else:
            errors += 1
    hc.close()
    with lock:
        out["latencies"].extend(lat)
        out["acked"].extend(f"{tag}c{conn}-{s:07d}" for s in acked)
        out["acked_events"] += acked_events
        out["errors"] += errors
        out["resent"] += resent
        for k, v in statuses.items():
            out["statuses"][str(k)] = out["statuses"].get(str(k), 0) + v


def main(argv: list[str]) -> int:
    base, key, seconds, conns = argv[0], argv[1], float(argv[2]), int(argv[3])
    rate = float(argv[4]) if len(argv) > 4 and float(argv[4]) > 0 else None
    tag = argv[5] if len(argv) > 5 else ""
    interval = conns * BATCH / rate if rate else None
    out: dict[str, Any] = {"latencies": [], "acked": [], "acked_events": 0, "errors": 0, "resent": 0, "statuses": {}}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds
    threads = [
        threading.Thread(target=worker, args=(c, base, key, deadline, out, lock, interval, tag)) for c in range(conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["elapsed_s"] = time.monotonic() - start
    sys.stdout.buffer.write(orjson.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
