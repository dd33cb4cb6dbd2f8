"""在职/离职继承: transfer_customer, resigned/transfer_customer, transfer_result (24 h delay, 2 per 90 days)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import items, page, text
from tests.wecom_server.state import Relation, Transfer

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

NINETY_DAYS = 90 * 86400


def settle(srv: WeComServer) -> None:
    """Complete waiting transfers whose 24 h have passed: the relation moves to the takeover member."""
    now = srv.now()
    for t in srv.company.transfers:
        if t.status == 2 and now - t.at >= srv.transfer_delay:
            old = srv.company.relations.pop((t.handover, t.external_userid), None)
            srv.company.relations[(t.takeover, t.external_userid)] = Relation(
                t.takeover,
                t.external_userid,
                int(t.at + srv.transfer_delay),
                add_way=202,
                state=old.state if old else "",
                oper_userid=t.handover,
                tag_ids=old.tag_ids if old else [],
            )
            t.status = 1


def _transfer(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    settle(srv)
    hand = text(q, "handover_userid", 64, required=True)
    take = text(q, "takeover_userid", 64, required=True)
    ids = items(q, "external_userid", 100, required=True)
    need(hand in srv.company.members, 40003, hand)
    need(take in srv.company.members and take != hand, 40003, take)
    now = srv.now()
    out = []
    for e in ids:
        recent = [t for t in srv.company.transfers if t.external_userid == e and now - t.at < NINETY_DAYS]
        if e not in srv.company.contacts:
            code = 40096
        elif (hand, e) not in srv.company.relations:
            code = 84061
        elif any(t.status == 2 for t in recent):
            code = 40129
        elif len(recent) >= 2:
            code = 40128
        else:
            srv.company.transfers.append(Transfer(hand, take, e, now))
            code = 0
        out.append({"external_userid": e, "errcode": code})
    return {"customer": out}


def transfer_customer(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    return _transfer(srv, q)


def resigned_transfer_customer(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    return _transfer(srv, q)


def transfer_result(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    settle(srv)
    hand = text(q, "handover_userid", 64, required=True)
    take = text(q, "takeover_userid", 64, required=True)
    rows = [t for t in srv.company.transfers if t.handover == hand and t.takeover == take]
    chunk, nxt = page(rows, q, 1000)
    return {
        "customer": [
            {"external_userid": t.external_userid, "status": t.status, "takeover_time": int(t.at + srv.transfer_delay)}
            for t in chunk
        ],
        "next_cursor": nxt,
    }
