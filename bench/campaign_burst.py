"""A burst of assists (助力) against the public help endpoint, from a separate load process on loopback.

Two topologies, each on a fresh brand:
- ``single_process_direct``: ``siyu serve`` alone (one process: the DuckDB warehouse is single-process), every
  phone on its own TCP connection from its own loopback address (127.1.x.y).
- ``public_processes_behind_proxy``: ``siyu serve`` + ``siyu serve-public --workers 2`` (the /m/ pages from
  processes of their own), the load on the public port as a reverse proxy sends it: kept-alive connections, each
  request naming its phone's address in ``X-Forwarded-For`` (so the per-IP limits still apply per phone).

The load process (``python -m bench.campaign_burst load <plan.json>``, plain asyncio sockets) first signs every
person in through ``/m/auth`` and reads their help page's CSRF token, then fires the burst: one POST
``/m/h/{token}`` per person, plus a second, concurrent POST for some people (same person twice).

Afterwards the state database is checked: no person counted twice, every sharer's counter equals its counted
helps, no reward granted past its stock, every accepted help traceable (campaign, variant, sharer, depth, guide).
Issue 8's goal: ≥ 2,000 assists/s on 2 cores. ``server_cpu_ms_per_request`` is the CPU all server processes
spent per POST during the burst (from /proc: what a shared machine's load changes least), and
``load_process_cpu_ms_per_request`` the load's own. ``service_rate`` is ``campaigns.help`` called in-process (no
HTTP) on the same kind of data, and ``profile`` the top of its profile — where the time goes.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BRAND = "burst"
SHARERS = 300
HELPERS = 3000
DUPLICATES = 300  # people who post twice at the same moment
STOCK = 100  # the first tier's reward stock: fewer than the sharers who reach it
CONCURRENCY = 64


def _ip(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


def _setup(data_dir: Path) -> dict[str, Any]:
    """Brand, rewards, a live assist campaign with 2 variants, the sharers, the helpers' link tokens."""
    from datetime import UTC, datetime, timedelta

    from siyu.config import Settings
    from siyu.public.visitor import link_token
    from siyu.services import brands, rewards
    from siyu.services import campaigns as C
    from siyu.services.context import Context

    ctx = Context.open(Settings.from_env(data_dir=data_dir))
    try:
        brands.create_brand(ctx, BRAND, "Burst")
        rewards.create_reward(
            ctx, BRAND, {"id": "cup", "name": "杯子", "kind": "coupon", "config": {"face_value": 5}, "stock": STOCK}
        )
        rewards.create_reward(ctx, BRAND, {"id": "coupon", "name": "券", "kind": "coupon", "config": {"face_value": 2}})
        now = datetime.now(UTC)
        cid = C.create(
            ctx,
            BRAND,
            {
                "kind": "assist",
                "name": "burst",
                "starts_at": (now - timedelta(days=1)).isoformat(),
                "ends_at": (now + timedelta(days=3)).isoformat(),
                "assist": {"tiers": [{"threshold": 3, "reward_id": "cup"}, {"threshold": 8, "reward_id": "coupon"}]},
                "anti_abuse": {"device_per_day": 1000, "ip_per_hour": 100_000, "person_per_day": 1000},
                "variants": [{"id": "A", "weight": 1}, {"id": "B", "weight": 1, "title": "B 版标题"}],
            },
        )["id"]
        C.launch(ctx, BRAND, cid)
        tokens = []
        for i in range(SHARERS):
            p = C.join(
                ctx,
                BRAND,
                cid,
                C.parse_identity("unionid", f"sharer{i:05d}"),
                channel="moments",
                platform="wechat",
                guide_id=f"g{i % 20}",
            )
            tokens.append(p["token"])
        people = [
            {
                "ip": _ip(i),
                "link": link_token(ctx, BRAND, "unionid", f"helper{i:06d}"),
                "sharer": tokens[i % SHARERS],
                "twice": i < DUPLICATES,
            }
            for i in range(HELPERS)
        ]
        return {"campaign": cid, "people": people}
    finally:
        ctx.close()


# ---- the load process ---------------------------------------------------------------------------------------


async def _request(port: int, ip: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection from ``ip`` (a phone of its own)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
    try:
        writer.write(raw)
        await writer.drain()
        return await _answer(reader)
    finally:
        writer.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (``cookies``: the Set-Cookie pairs) and body of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    cookies = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            if k.lower() == "set-cookie":
                cookies.append(v.strip().split(";", 1)[0])
            headers[k.lower()] = v.strip()
    headers["cookies"] = "; ".join(cookies)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


class _Upstream(asyncio.Protocol):
    """One kept-alive upstream connection of the proxy: a request written, its answer read whole (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiting is None:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        size = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buf) < end + 4 + size:
            return
        status, body = int(head[9:12]), bytes(self.buf[end + 4 : end + 4 + size])
        del self.buf[: end + 4 + size]
        waiting, self.waiting = self.waiting, None
        waiting.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc or ConnectionError("the server closed the connection"))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiting


class _Proxy:
    """The load as a reverse proxy sends it (nginx in front of siyu): ``concurrency`` kept-alive upstream
    connections, each request naming its phone's address in ``X-Forwarded-For`` (trusted from loopback). Each
    connection takes the next request as soon as its answer is read; the requests are built before the burst, so
    the load's own CPU during it is little more than the socket calls (its share of the 2 cores is reported)."""

    def __init__(self, port: int) -> None:
        self.port = port

    @staticmethod
    def raw(ip: str, raw: bytes) -> bytes:
        """``raw`` as the proxy forwards it: the phone's address added, the connection kept alive."""
        head, rest = raw.split(b"\r\n", 1)
        return (
            head
            + f"\r\nX-Forwarded-For: {ip}\r\n".encode()
            + rest.replace(b"Connection: close", b"Connection: keep-alive")
        )

    async def connect(self, connections: int) -> list[_Upstream]:
        """``connections`` open upstream connections (a running proxy's are open before a burst comes)."""
        loop = asyncio.get_running_loop()
        return [(await loop.create_connection(_Upstream, "127.0.0.1", self.port))[1] for _ in range(connections)]

    @staticmethod
    async def run(conns: list[_Upstream], jobs: list[bytes]) -> list[tuple[int, bytes, float]]:
        """Send every request in ``jobs`` over ``conns``: (status, body, seconds) in order."""
        out: list[tuple[int, bytes, float]] = [(0, b"", 0.0)] * len(jobs)
        todo = iter(range(len(jobs)))

        async def drive(conn: _Upstream) -> None:
            for i in todo:
                t = time.perf_counter()
                status, body = await conn.send(jobs[i])
                out[i] = (status, body, time.perf_counter() - t)

        await asyncio.gather(*(drive(c) for c in conns))
        for c in conns:
            assert c.transport is not None
            c.transport.close()
        return out


def _get(path: str, cookie: str = "") -> bytes:
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n".encode()


def _cpu_s(pids: list[int] | None) -> float | None:
    """CPU seconds (user + system) the processes ``pids`` and their children have used so far (Linux /proc; None
    elsewhere or without pids)."""
    if not pids:
        return None
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            total += _cpu_s([int(c) for c in children]) or 0.0
    except (OSError, IndexError):
        return None
    return total


def _steal_s() -> float | None:
    """Core-seconds stolen from this machine by the hypervisor so far (Linux /proc/stat; None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _post(path: str, cookie: str, body: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n{body}"
    ).encode()


async def _load(plan: dict[str, Any]) -> dict[str, Any]:
    from urllib.parse import quote

    port = plan["port"]
    people = plan["people"]
    concurrency = plan.get("concurrency", CONCURRENCY)
    sem = asyncio.Semaphore(concurrency)
    prepare_errors: dict[str, int] = {}

    async def prepare(p: dict[str, Any]) -> None:
        async with sem:
            _, h, _ = await _request(port, p["ip"], _get(f"/m/auth?t={quote(p['link'])}&next=/m/"))
            p["cookie"] = h["cookies"]
            status, h, body = await _request(port, p["ip"], _get(f"/m/h/{p['sharer']}", p["cookie"]))
            if h["cookies"]:  # the page sets the device cookie: a phone keeps it for the POST
                p["cookie"] = f"{p['cookie']}; {h['cookies']}"
            m = re.search(rb'name="csrf" value="([^"]+)"', body)
            p["csrf"] = m.group(1).decode() if m else ""
            if not m:  # the burst would then be refused (403): say why here
                key = f"{status}:{body[:200].decode('utf-8', 'replace')}"
                prepare_errors[key] = prepare_errors.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(prepare(p) for p in people))
    setup_s = time.perf_counter() - t0
    jobs = [p for p in people] + [p for p in people if p["twice"]]
    jobs.sort(key=lambda p: p["ip"])  # a person's two posts leave next to each other
    states: dict[str, int] = {}
    latencies: list[float] = []

    def tally(status: int, body: bytes) -> None:
        m = re.search(rb'data-state="([a-z_]+)"(?: data-reason="([a-z_]*)")?', body)
        key = f"{status}:{m.group(1).decode()}:{(m.group(2) or b'').decode()}" if m else f"{status}:?"
        states[key] = states.get(key, 0) + 1

    def post(p: dict[str, Any]) -> bytes:
        return _post(f"/m/h/{p['sharer']}", p["cookie"], f"csrf={quote(p['csrf'])}")

    async def fire(p: dict[str, Any]) -> None:
        async with sem:
            t = time.perf_counter()
            status, _, body = await _request(port, p["ip"], post(p))
            latencies.append(time.perf_counter() - t)
            tally(status, body)

    proxy = _Proxy(port) if plan.get("mode") == "proxy" else None
    raws = [_Proxy.raw(p["ip"], post(p)) for p in jobs] if proxy is not None else []
    upstream = await proxy.connect(concurrency) if proxy is not None else []
    cpu0, load0, steal0 = _cpu_s(plan.get("server_pids")), _cpu_s([os.getpid()]), _steal_s()
    t0 = time.perf_counter()
    if proxy is not None:
        answers = await proxy.run(upstream, raws)
    else:
        await asyncio.gather(*(fire(p) for p in jobs))
    wall = time.perf_counter() - t0
    cpu1, load1, steal1 = _cpu_s(plan.get("server_pids")), _cpu_s([os.getpid()]), _steal_s()
    if proxy is not None:
        for status, body, seconds in answers:
            latencies.append(seconds)
            tally(status, body)
    latencies.sort()
    return {
        "setup_s": round(setup_s, 2),
        "prepare_errors": prepare_errors,
        "requests": len(jobs),
        "wall_s": round(wall, 3),
        "assists_per_s": round(len(jobs) / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "answers": dict(sorted(states.items())),
        # CPU the server spent per request during the burst: its capacity on a free core is 1000 / this
        "server_cpu_ms_per_request": round((cpu1 - cpu0) * 1000 / len(jobs), 3) if cpu0 and cpu1 else None,
        "load_process_cpu_ms_per_request": round((load1 - load0) * 1000 / len(jobs), 3) if load0 and load1 else None,
        # the steadier figure on a host whose speed varies: the load does the same work in every run
        "server_to_load_cpu": round((cpu1 - cpu0) / (load1 - load0), 2) if cpu0 and cpu1 and load0 and load1 else None,
        "load_average": os.getloadavg()[0],
        # CPU the hypervisor gave to other guests during the burst (a shared host's noise), in core-seconds
        "steal_s": round(steal1 - steal0, 3) if steal0 is not None and steal1 is not None else None,
    }


def load_main(plan_file: str) -> None:
    plan = json.loads(Path(plan_file).read_text())
    out = asyncio.run(_load(plan))
    Path(plan_file).with_suffix(".out.json").write_text(json.dumps(out))


# ---- checks and the in-process profile ------------------------------------------------------------------------


def _verify(data_dir: Path, cid: str) -> dict[str, Any]:
    from sqlalchemy import text

    from siyu.config import Settings
    from siyu.services.context import Context

    ctx = Context.open(Settings.from_env(data_dir=data_dir))
    try:
        with ctx.engine.connect() as con:

            def one(sql: str) -> int:
                return int(con.execute(text(sql), {"c": cid}).scalar() or 0)

            counted = one("SELECT count(*) FROM campaign_helps WHERE campaign_id = :c AND state = 'counted'")
            twice = one(
                "SELECT count(*) FROM (SELECT helper_key FROM campaign_helps WHERE campaign_id = :c "
                "AND state = 'counted' GROUP BY helper_key HAVING count(*) > 1) t"
            )
            counter_off = one(
                "SELECT count(*) FROM campaign_participants p WHERE p.campaign_id = :c AND p.helps_counted != "
                "(SELECT count(*) FROM campaign_helps h WHERE h.sharer_id = p.id AND h.state = 'counted')"
            )
            untraceable = one(
                "SELECT count(*) FROM campaign_helps WHERE campaign_id = :c AND state = 'counted' AND "
                "(sharer_id IS NULL OR variant IS NULL OR depth IS NULL OR guide_id IS NULL OR channel = '')"
            )
            cups = con.execute(text("SELECT stock_total, stock_left, granted FROM rewards WHERE id = 'cup'")).one()
            cup_grants = int(
                con.execute(text("SELECT count(*) FROM reward_grants WHERE reward_id = 'cup'")).scalar() or 0
            )
            by_variant: dict[str, int] = dict(
                con.execute(
                    text(
                        "SELECT variant, count(*) FROM campaign_helps WHERE campaign_id = :c AND state = 'counted' "
                        "GROUP BY variant"
                    ),
                    {"c": cid},
                ).all()
            )
        return {
            "counted_helps": counted,
            "people_counted_twice": twice,
            "sharer_counters_off": counter_off,
            "untraceable_helps": untraceable,
            "cup_stock": {"total": cups[0], "left": cups[1], "granted": cups[2], "grant_rows": cup_grants},
            "oversold": max(0, cup_grants - int(cups[0])),
            "counted_by_variant": by_variant,
        }
    finally:
        ctx.close()


def _service_rate(n: int = 600) -> dict[str, Any]:
    """``campaigns.help`` in-process (no HTTP, no page): helps per second and the top of the profile."""
    from siyu.config import Settings
    from siyu.services import campaigns as C
    from siyu.services.context import Context

    # calls one after another never share a commit; without the writer thread the profile sees every part
    os.environ["SIYU_HELP_BATCH"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        setup = _setup(data_dir)
        ctx = Context.open(Settings.from_env(data_dir=data_dir))
        try:
            cid = setup["campaign"]
            people = setup["people"][:n]
            calls = [(p["sharer"], C.parse_identity("unionid", f"svc{i:06d}"), p["ip"]) for i, p in enumerate(people)]
            half = len(calls) // 2
            t0 = time.perf_counter()
            for token, ident, ip in calls[:half]:
                C.help(ctx, BRAND, cid, token, ident, device_id=f"dev-{ip}", ip=ip)
            rate = half / (time.perf_counter() - t0)
            prof = cProfile.Profile()
            prof.enable()
            for token, ident, ip in calls[half:]:
                C.help(ctx, BRAND, cid, token, ident, device_id=f"dev-{ip}", ip=ip)
            prof.disable()
            stats = pstats.Stats(prof, stream=io.StringIO())
            n_prof = max(1, len(calls) - half)
            raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
            spent = {"sqlite_commit_fsync": 0.0, "sqlite_execute": 0.0, "duckdb": 0.0}
            for (_file, _line, fn), (_cc, _nc, tt, _ct, _callers) in raw.items():
                if "commit' of 'sqlite3.Connection" in fn:
                    spent["sqlite_commit_fsync"] += tt
                elif "execute' of 'sqlite3.Cursor" in fn:
                    spent["sqlite_execute"] += tt
                elif "_duckdb" in fn:
                    spent["duckdb"] += tt
            total = sum(v[2] for v in raw.values())
            per = {k: round(v * 1000 / n_prof, 2) for k, v in spent.items()}
            per["python_orm_and_rest"] = round((total - sum(spent.values())) * 1000 / n_prof, 2)
            return {
                "helps_per_s": round(rate, 1),
                "ms_per_help": round(1000 / rate, 2),
                "profiled_ms_per_help_by_part": per,
            }
        finally:
            ctx.close()


SERVER = """
import uvicorn
from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services.context import Context
ctx = Context.open(Settings.from_env())
uvicorn.run(create_app(ctx, with_console=False), host="127.0.0.1", port={port}, log_level="warning")
"""


def _started(proc: subprocess.Popen[bytes], port: int, what: str) -> subprocess.Popen[bytes]:
    """``proc`` once it answers /healthz on ``port`` (killed, and an error naming ``what``, after 300 s)."""
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "SIYU_DATA_DIR": str(data_dir), "SIYU_SCHEDULER": "off"}


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The app (API + public pages, no console) under uvicorn in its own process, once it answers /healthz."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=_env(data_dir), cwd=ROOT)
    return _started(proc, port, "the server")


def _serve_public(data_dir: Path, port: int, main_port: int, workers: int) -> subprocess.Popen[bytes]:
    """``siyu serve-public --workers N`` in front of the main process, once it answers /healthz."""
    from tests.support.live import all_answering

    siyu = str(Path(sys.executable).parent / "siyu")
    args = ["serve-public", "--port", str(port), "--workers", str(workers)]
    cmd = [siyu, *args, "--main-url", f"http://127.0.0.1:{main_port}"]
    proc = subprocess.Popen(cmd, env=_env(data_dir), cwd=ROOT, stdout=subprocess.DEVNULL)  # its banner: not JSON
    _started(proc, port, "siyu serve-public")
    all_answering(f"http://127.0.0.1:{port}", workers)  # every worker up, not just the first
    return proc


def scenario(topology: str, mode: str, workers: int = 2, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """One burst on a fresh brand. ``topology``: "single" (``siyu serve`` alone) or "public" (``siyu serve`` +
    ``siyu serve-public --workers N``, the load on the public port). ``mode``: "direct" (each phone its own
    connection) or "proxy" (kept-alive connections with X-Forwarded-For, as nginx in front sends them)."""
    from tests.support.postgres import free_port

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        os.environ.setdefault("SIYU_SECRET_KEY", "bench-campaign-burst-secret")
        setup = _setup(data_dir)
        port = free_port()
        procs = [_serve(data_dir, port)]
        try:
            if topology == "public":
                public_port = free_port()
                procs.append(_serve_public(data_dir, public_port, port, workers))
                port = public_port
            plan = Path(tmp) / "plan.json"
            pids = [p.pid for p in procs]
            plan.write_text(
                json.dumps(
                    {
                        "port": port,
                        "server_pids": pids,
                        "people": setup["people"],
                        "mode": mode,
                        "concurrency": concurrency,
                    }
                )
            )
            subprocess.run([sys.executable, "-m", "bench.campaign_burst", "load", str(plan)], cwd=ROOT, check=True)
            load = json.loads(plan.with_suffix(".out.json").read_text())
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=30)
        checks = _verify(data_dir, setup["campaign"])
    out = {"topology": topology, "mode": mode, **load, "checks": checks}
    if topology == "public":
        out["public_workers"] = workers
    return out


def run() -> dict[str, Any]:
    """Both topologies (see ``scenario``), the checks after each, and the in-process service rate."""
    return {
        "people": HELPERS,
        "sharers": SHARERS,
        "same_person_twice": DUPLICATES,
        "concurrency": CONCURRENCY,
        "single_process_direct": scenario("single", "direct"),
        "public_processes_behind_proxy": scenario("public", "proxy"),
        "service_in_process": _service_rate(),
        "goal_assists_per_s": 2000,
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "load":
        load_main(sys.argv[2])
    else:
        print(json.dumps(run(), ensure_ascii=False, indent=2))
