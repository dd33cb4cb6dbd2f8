"""``groupchat/get_join_way`` (the join code's QR URL, as WeCom documents it) for the local server.

Registered in ``routes.ROUTES`` like every other API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer


def get_join_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    cid = text(q, "config_id", 64, required=True)
    way = srv.company.join_ways.get(cid)
    need(way is not None, 40058, "invalid config_id")
    assert way is not None
    return {"join_way": dict(way)}
