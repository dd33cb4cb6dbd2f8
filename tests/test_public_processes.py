"""`siyu serve-public`: the /m/ pages from processes of their own next to `siyu serve`, as real processes over
real HTTP — helps counted by the public processes, sign-ins (which need the warehouse) handed to the main
process, other paths refused with directions, and the help path still serving while the main process is down."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from siyu.config import Settings
from siyu.public.visitor import SESSION_COOKIE, _serializers, link_token
from siyu.services import brands, rewards
from siyu.services import campaigns as C
from siyu.services.context import Context
from siyu.services.public_process import open_public_context
from tests.support.live import all_answering
from tests.support.postgres import free_port
from tests.support.prod import start_siyu

B = "pubproc"


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("pubproc") / "data"
    env = {**os.environ, "SIYU_DATA_DIR": str(data), "SIYU_SCHEDULER": "off", "SIYU_SECRET_KEY": "pubproc-secret"}
    with pytest.MonkeyPatch.context() as mp:  # this process signs the link tokens with the same key
        mp.setenv("SIYU_SECRET_KEY", env["SIYU_SECRET_KEY"])
        yield from _serve_both(data, env)


def _serve_both(data: Path, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    ctx = Context.open(Settings.from_env(data_dir=data))
    brands.create_brand(ctx, B, "Public processes")
    rewards.create_reward(ctx, B, {"id": "cup", "name": "杯子", "kind": "coupon", "config": {"face_value": 5}})
    now = datetime.now(UTC)
    cid = C.create(
        ctx,
        B,
        {
            "kind": "assist",
            "name": "多进程助力",
            "starts_at": (now - timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=2)).isoformat(),
            "assist": {"tiers": [{"threshold": 10, "reward_id": "cup"}]},
            "anti_abuse": {"device_per_day": 100, "ip_per_hour": 1000, "person_per_day": 100},
        },
    )["id"]
    C.launch(ctx, B, cid)
    sharer = C.join(ctx, B, cid, C.parse_identity("unionid", "sharer-1"), channel="moments", guide_id="g01")
    ctx.close()  # the main process opens the warehouse now
    main_port, pub_port = free_port(), free_port()
    main = start_siyu(["serve"], env, main_port, data.parent / "main.log", 120)
    pub = start_siyu(
        ["serve-public", "--workers", "2", "--main-url", f"http://127.0.0.1:{main_port}"],
        env,
        pub_port,
        data.parent / "public.log",
        120,
    )
    state = open_public_context(Settings.from_env(data_dir=data))
    try:
        yield {
            "ctx": state,
            "main": main,
            "pub": pub,
            "main_url": f"http://127.0.0.1:{main_port}",
            "pub_url": f"http://127.0.0.1:{pub_port}",
            "campaign": cid,
            "token": sharer["token"],
            "env": env,
            "data": data,
        }
    finally:
        state.close()
        for proc in (pub, main):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def phone(s: dict[str, Any], n: int) -> httpx.Client:
    """A phone signed in through the public port (the sign-in needs OneID: the main process answers it)."""
    client = httpx.Client(base_url=s["pub_url"], timeout=30)
    t = link_token(s["ctx"], B, "unionid", f"friend-{n}")
    r = client.get("/m/auth", params={"t": t, "next": "/m/"})
    assert r.status_code == 303 and "siyu_m" in r.cookies, r.text
    return client


def help_once(client: httpx.Client, token: str) -> httpx.Response:
    page = client.get(f"/m/h/{token}")
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert csrf, page.text
    return client.post(f"/m/h/{token}", data={"csrf": csrf.group(1)})


def state_of(html: str) -> str:
    m = re.search(r'data-state="([a-z_]+)"(?: data-reason="([a-z_]*)")?', html)
    assert m, html[:400]
    return f"{m.group(1)}:{m.group(2) or ''}"


def test_helps_are_counted_by_the_public_processes(sites: dict[str, Any]) -> None:
    health = httpx.get(f"{sites['pub_url']}/healthz").json()
    assert health["role"] == "public" and health["main_url"] == sites["main_url"]
    a, b = phone(sites, 1), phone(sites, 2)
    assert state_of(help_once(a, sites["token"]).text) == "counted:"
    assert state_of(help_once(a, sites["token"]).text) == "rejected:already_helped"
    assert state_of(help_once(b, sites["token"]).text) == "counted:"
    with sites["ctx"].engine.connect() as con:
        rows = con.execute(
            text("SELECT helper_id_value, state FROM campaign_helps WHERE campaign_id = :c ORDER BY id"),
            {"c": sites["campaign"]},
        ).all()
        counted = con.execute(
            text("SELECT helps_counted FROM campaign_participants WHERE token = :t"), {"t": sites["token"]}
        ).scalar()
    assert [tuple(r) for r in rows] == [("friend-1", "counted"), ("friend-1", "rejected"), ("friend-2", "counted")]
    assert counted == 2


def test_other_paths_name_the_main_process(sites: dict[str, Any]) -> None:
    r = httpx.get(f"{sites['pub_url']}/api/customers")
    assert r.status_code == 404 and sites["main_url"] in r.text


def test_a_help_needing_oneid_is_handed_to_the_main_process(sites: dict[str, Any]) -> None:
    # a session without OneID's answer (as from before sign-ins kept it): the help must ask OneID, whose
    # warehouse only the main process opens; the public process hands the POST over before writing anything
    session = _serializers(sites["ctx"])[1].dumps({"b": B, "t": "unionid", "v": "friend-oneid", "s": "sid-oneid"})
    c = httpx.Client(base_url=sites["pub_url"], timeout=30, cookies={SESSION_COOKIE: session})
    page = c.get(f"/m/h/{sites['token']}")
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert csrf, page.text[:300]
    r = c.post(f"/m/h/{sites['token']}", data={"csrf": csrf.group(1)})
    assert r.status_code == 200 and state_of(r.text) == "counted:"
    with sites["ctx"].engine.connect() as con:
        n = con.execute(
            text("SELECT count(*) FROM campaign_helps WHERE helper_id_value = 'friend-oneid' AND state = 'counted'")
        ).scalar()
    assert n == 1  # written once, by the main process


def test_a_nul_in_a_hot_path_is_refused_naming_it(sites: dict[str, Any]) -> None:
    r = httpx.post(f"{sites['pub_url']}/m/h/ab%00cd", data={"csrf": "x"})
    assert r.status_code == 422 and r.json()["field"] == "path"


def test_a_worker_that_dies_is_replaced(sites: dict[str, Any]) -> None:
    pub: subprocess.Popen[bytes] = sites["pub"]
    before = _workers(pub.pid)
    assert len(before) == 2  # --workers 2, each with a listening socket of its own on the port
    victim = sorted(before)[0]
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = _workers(pub.pid)
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.2)
    assert victim not in now and len(now) == 2
    all_answering(sites["pub_url"], 2)  # the port answers from both workers again


def test_connections_opened_at_once_are_spread_over_the_workers(sites: dict[str, Any]) -> None:
    # a burst's kept-alive connections (a reverse proxy's upstream pool) all arrive together; on one shared
    # listening socket the first worker to wake accepts nearly all of them, with a socket per worker the kernel
    # spreads them (by the address hash: 40 connections all on one of 2 workers has odds of 2^-39)
    all_answering(sites["pub_url"], 2)
    port = int(sites["pub_url"].rsplit(":", 1)[1])
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        pids = []
        for conn in conns:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for conn in conns:
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
            pids.append(json.loads(answer.split(b"\r\n\r\n", 1)[1])["pid"])
    finally:
        for conn in conns:
            conn.close()
    counts = sorted(Counter(pids).values())
    assert len(counts) == 2 and counts[0] >= 8, counts


def _workers(pid: int) -> set[str]:
    """The worker processes of the supervisor ``pid`` (its spawned children, not multiprocessing's tracker)."""
    out = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.add(child)
        except FileNotFoundError:  # exited meanwhile
            continue
    return out


def test_helps_go_on_while_the_main_process_is_down(sites: dict[str, Any]) -> None:
    c = phone(sites, 3)  # signed in while the main process answers
    page = c.get(f"/m/h/{sites['token']}")
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert csrf
    main: subprocess.Popen[bytes] = sites["main"]
    main.terminate()
    main.wait(timeout=30)
    r = c.post(f"/m/h/{sites['token']}", data={"csrf": csrf.group(1)})
    assert state_of(r.text) == "counted:"  # served by a public process from the state database
    new = httpx.Client(base_url=sites["pub_url"], timeout=30)
    t = link_token(sites["ctx"], B, "unionid", "friend-late")
    r = new.get("/m/auth", params={"t": t, "next": "/m/"})
    assert r.status_code == 502 and "siyu serve" in r.text  # a sign-in needs the main process: said so
    assert Path(sites["data"]).exists()


def test_a_public_worker_does_not_load_the_warehouse_stack() -> None:
    """A public-pages process never opens the warehouse, so it need not import Ibis or pandas (about 1 s of each
    worker's start-up): checked in a fresh interpreter, where the worker's module is the only import."""
    probe = "import sys, siyu.api.public_app; print(sorted(m for m in ('ibis', 'pandas', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
