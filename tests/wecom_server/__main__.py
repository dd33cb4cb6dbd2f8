"""Run the local WeCom server: ``python -m tests.wecom_server --port 8900 --guides 20 --contacts 500``.

With ``--callback-url`` (and the brand's ``--token``/``--aes-key``) it also sends callbacks there: the
``/_sim/scan?config_id=...`` and ``/_sim/delete?userid=...&external_userid=...`` endpoints simulate a customer.
"""

from __future__ import annotations

import argparse
import random
import time

import uvicorn

from tests.wecom_server import WeComServer, actions, seed
from tests.wecom_server.routes_behavior import DAY, record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--corpid", default="wwlocal0000000001")
    p.add_argument("--secret", default="contact-secret")
    p.add_argument("--guides", type=int, default=10)
    p.add_argument("--contacts", type=int, default=100, help="contacts per guide")
    p.add_argument("--members", default="", help="comma-separated member userids to add (e.g. the demo's guides)")
    p.add_argument("--callback-url", default="")
    p.add_argument("--token", default="")
    p.add_argument("--aes-key", default="")
    p.add_argument(
        "--behavior-days", type=int, default=0, help="give each --members member 联系客户统计 for the last N days"
    )
    a = p.parse_args()
    srv = WeComServer(corpid=a.corpid, secrets_={a.secret: "customer contact"})
    seed(srv.company, a.guides, a.contacts)
    members = [m.strip() for m in a.members.split(",") if m.strip()]
    for uid in members:
        srv.company.members.setdefault(uid, uid)
    if a.callback_url:
        srv.connect_callbacks(a.callback_url, a.token, a.aes_key)
    simulate_behavior(srv, members, a.behavior_days)

    @srv.app.post("/_sim/scan")
    def sim_scan(config_id: str) -> dict[str, object]:
        userid, ext, code, resp = actions.scan(srv, config_id)
        return {
            "userid": userid,
            "external_userid": ext,
            "welcome_code": code,
            "callback_status": resp.status_code if resp is not None else None,
        }

    @srv.app.post("/_sim/delete")
    def sim_delete(userid: str, external_userid: str) -> dict[str, object]:
        resp = actions.customer_deletes(srv, userid, external_userid)
        return {"callback_status": resp.status_code if resp is not None else None}

    @srv.app.get("/_sim/stats")
    def sim_stats() -> dict[str, object]:
        return {"busy_seconds": srv.busy_seconds, "counts": dict(srv.counts), "relations": len(srv.company.relations)}

    print(
        f"local WeCom server on http://{a.host}:{a.port} — corpid {a.corpid}, secret {a.secret}, "
        f"{len(srv.company.relations)} relations ({time.strftime('%H:%M:%S')})"
    )
    uvicorn.run(srv.app, host=a.host, port=a.port, log_level="warning")


def simulate_behavior(srv: WeComServer, members: list[str], days: int, seed_: int = 20261001) -> None:
    """联系客户统计 for ``members`` over the last ``days`` days (up to yesterday, China time): a guide's own pace
    (chats, share of customer-started chats replied, minutes to a first reply) with day-to-day noise, the same on
    every start (seeded)."""
    rng = random.Random(seed_)
    now = time.time()
    for uid in members:
        pace, reply, minutes = rng.uniform(15, 45), rng.uniform(0.82, 0.99), rng.uniform(4, 35)
        for back in range(1, days + 1):
            chats = max(0, round(rng.gauss(pace, pace / 5)))
            started = round(chats * rng.uniform(0.5, 0.7))
            replied = round(started * min(1.0, rng.gauss(reply, 0.03)))
            record(
                srv,
                uid,
                now - back * DAY,
                chats=chats,
                messages=chats * rng.uniform(2.5, 4.5),
                started=started,
                replied=replied,
                reply_minutes=replied * max(1.0, rng.gauss(minutes, minutes / 4)),
                negative=rng.choice((0, 0, 0, 0, 1)),
                applies=rng.randint(3, 12),
                new_contacts=rng.randint(2, 10),
            )


if __name__ == "__main__":
    main()
