"""Customer groups (客户群) from WeCom → ``touchpoints`` (kind customer_group, owner guide) + ``group_members``.

A group is reconciled from ``groupchat/get``: external members present are members (joined_at = join_time; a
re-join starts the membership again), members no longer listed get ``left_at``; a dismissed group ends every
membership.  Members are keyed by external_userid (unionid observed with it for OneID when WeCom gives it).
Used by the full sync (``sync_groups``: ``groupchat/list`` for the guides' groups) and by the
``change_external_chat`` callbacks (WeCom does not say who joined or left: the group is fetched again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.models import GroupChat
from siyu.domain.identity import normalize
from siyu.domain.models import TouchpointKind
from siyu.services.context import Context
from siyu.services.oneid import Observation, add_observations, now
from siyu.services.wecom import relations as rel
from siyu.services.wecom.config import client_for, get_config


@dataclass
class GroupStats:
    groups: int = 0
    joined: int = 0
    left: int = 0
    observations: int = 0
    unknown_owners: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(cur: duckdb.DuckDBPyConnection, brand_id: str, chat: GroupChat, at: datetime, stats: GroupStats) -> None:
    """Make the warehouse's view of ``chat`` equal WeCom's (inside the caller's transaction)."""
    owner = rel.guide_for(cur, brand_id, chat.owner)
    if owner is None and chat.owner not in stats.unknown_owners:
        stats.unknown_owners.append(chat.owner)
    cur.execute(
        "INSERT INTO touchpoints (brand_id, touchpoint_id, name, kind, guide_id) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (brand_id, touchpoint_id) DO UPDATE SET name = excluded.name, guide_id = excluded.guide_id",
        [brand_id, chat.chat_id, chat.name or chat.chat_id, TouchpointKind.CUSTOMER_GROUP.value, owner],
    )
    admins = {g for g in (rel.guide_for(cur, brand_id, u) for u in chat.admins) if g is not None and g != owner}
    cur.execute("DELETE FROM group_admins WHERE brand_id = ? AND touchpoint_id = ?", [brand_id, chat.chat_id])
    for g in sorted(admins):
        cur.execute("INSERT INTO group_admins VALUES (?, ?, ?)", [brand_id, chat.chat_id, g])
    current = {m.userid: m for m in chat.members if m.type == 2}
    stored = dict(
        cur.execute(
            "SELECT id_value, left_at IS NULL FROM group_members WHERE brand_id = ? AND touchpoint_id = ? "
            "AND id_type = 'external_userid'",
            [brand_id, chat.chat_id],
        ).fetchall()
    )
    for ext, m in current.items():
        if stored.get(ext) is True:
            continue
        joined = rel.utc(m.join_time) if m.join_time else at
        cur.execute(
            "INSERT INTO group_members (brand_id, touchpoint_id, id_type, id_value, joined_at, left_at) "
            "VALUES (?, ?, 'external_userid', ?, ?, NULL) ON CONFLICT (brand_id, touchpoint_id, id_type, id_value) "
            "DO UPDATE SET joined_at = excluded.joined_at, left_at = NULL",
            [brand_id, chat.chat_id, ext, joined],
        )
        stats.joined += 1
        ref = f"wecom-group:{chat.chat_id}:{ext}:{m.join_time}"
        seen = cur.execute(
            "SELECT 1 FROM identity_observations WHERE brand_id = ? AND source_kind = ? AND source_ref = ? LIMIT 1",
            [brand_id, rel.SOURCE_KIND, ref],
        ).fetchone()
        if not seen:
            ids = [normalize("external_userid", ext)] + ([normalize("unionid", m.unionid)] if m.unionid else [])
            stats.observations += add_observations(
                cur, brand_id, [Observation(rel.SOURCE_KIND, ref, joined, tuple(ids), {"group": chat.chat_id})]
            )
    gone = [ext for ext, active in stored.items() if active and ext not in current]
    for ext in gone:
        cur.execute(
            "UPDATE group_members SET left_at = ? WHERE brand_id = ? AND touchpoint_id = ? "
            "AND id_type = 'external_userid' AND id_value = ?",
            [at, brand_id, chat.chat_id, ext],
        )
    stats.left += len(gone)
    stats.groups += 1


def active_members(cur: duckdb.DuckDBPyConnection, brand_id: str, chat_id: str) -> set[str]:
    """External_userids of the members of ``chat_id`` the warehouse holds as in the group."""
    rows = cur.execute(
        "SELECT id_value FROM group_members WHERE brand_id = ? AND touchpoint_id = ? AND id_type = 'external_userid' "
        "AND left_at IS NULL",
        [brand_id, chat_id],
    ).fetchall()
    return {str(r[0]) for r in rows}


def dismiss(cur: duckdb.DuckDBPyConnection, brand_id: str, chat_id: str, at: datetime) -> int:
    """A dismissed group: every open membership ends at ``at``."""
    n = cur.execute(
        "SELECT count(*) FROM group_members WHERE brand_id = ? AND touchpoint_id = ? AND left_at IS NULL",
        [brand_id, chat_id],
    ).fetchone()
    cur.execute(
        "UPDATE group_members SET left_at = ? WHERE brand_id = ? AND touchpoint_id = ? AND left_at IS NULL",
        [at, brand_id, chat_id],
    )
    return int(n[0]) if n else 0


def sync_groups(ctx: Context, brand_id: str, client: WeComClient | None = None) -> GroupStats:
    """Every group owned by the brand's guides, reconciled (groups of members who are not guides are skipped)."""
    own = client is None
    client = client or client_for(get_config(ctx, brand_id))
    stats = GroupStats()
    try:
        owners = [
            str(u)
            for (u,) in ctx.warehouse.fetch(
                "SELECT wecom_userid FROM guides WHERE brand_id = ? AND wecom_userid IS NOT NULL", [brand_id]
            )
        ]
        chats = [client.get_group_chat(c) for c in client.iter_group_chats(owners=owners)] if owners else []
        at = now()
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            for chat in chats:
                reconcile(cur, brand_id, chat, at, stats)
    finally:
        if own:
            client.close()
    if stats.observations:
        from siyu.services import oneid

        oneid.resolve_pending(ctx, brand_id)
    return stats
