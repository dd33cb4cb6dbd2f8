"""Apply WeCom contact changes to the warehouse: customer ↔ guide relations and OneID observations.

Relations follow the import writer's conventions (``siyu.services.imports.writers.write_wecom_contacts``):
``state`` active | lost, ``lost_by`` customer (删粉, del_follow_user) | guide (del_external_contact) | transfer
(DELETE_BY_TRANSFER), ``add_way`` as text, ``channel_id`` = the channel whose id or name is the code's state (else
the state itself).  Every write is idempotent, so an event processed twice changes nothing the second time.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from siyu.domain.identity import IdentifierError, normalize
from siyu.domain.models import Identity
from siyu.services.oneid import Observation, add_observations

SOURCE_KIND = "wecom"


@dataclass(frozen=True)
class NewRelation:
    """What an add event (enriched by the API's ``get`` when available) says about a relation."""

    external_userid: str
    userid: str
    added_at: datetime
    add_way: int | None
    state: str
    unionid: str = ""
    name: str = ""


def guide_for(cur: duckdb.DuckDBPyConnection, brand_id: str, userid: str) -> str | None:
    """The guide whose wecom_userid (or guide_id) is ``userid``."""
    row = cur.execute(
        "SELECT guide_id FROM guides WHERE brand_id = ? AND (wecom_userid = ? OR guide_id = ?) "
        "ORDER BY wecom_userid = ? DESC LIMIT 1",
        [brand_id, userid, userid, userid],
    ).fetchone()
    return str(row[0]) if row else None


def channel_for(cur: duckdb.DuckDBPyConnection, brand_id: str, state: str) -> str | None:
    """The channel a contact way's state names (by id, then name); the state itself when none matches."""
    if not state:
        return None
    row = cur.execute(
        "SELECT channel_id FROM channels WHERE brand_id = ? AND (channel_id = ? OR name = ?) "
        "ORDER BY channel_id = ? DESC LIMIT 1",
        [brand_id, state, state, state],
    ).fetchone()
    return str(row[0]) if row else state


class Lookups:
    """Guides by wecom_userid and channels by id/name of one brand, read once per processing run (a miss reads
    the tables again, so guides imported meanwhile are found)."""

    def __init__(self, brand_id: str) -> None:
        self.brand_id = brand_id
        self._guides: dict[str, str] | None = None
        self._channels: dict[str, str] | None = None

    def _load(self, cur: duckdb.DuckDBPyConnection) -> None:
        rows = cur.execute("SELECT guide_id, wecom_userid FROM guides WHERE brand_id = ?", [self.brand_id]).fetchall()
        self._guides = {str(g): str(g) for g, _ in rows}
        self._guides.update({str(u): str(g) for g, u in rows if u})
        chans = cur.execute("SELECT channel_id, name FROM channels WHERE brand_id = ?", [self.brand_id]).fetchall()
        self._channels = {str(n): str(c) for c, n in sorted(chans, reverse=True)}
        self._channels.update({str(c): str(c) for c, _ in chans})

    def guide(self, cur: duckdb.DuckDBPyConnection, userid: str) -> str | None:
        if self._guides is None or userid not in self._guides:
            self._load(cur)
        assert self._guides is not None
        return self._guides.get(userid)

    def channel(self, cur: duckdb.DuckDBPyConnection, state: str) -> str | None:
        if not state:
            return None
        if self._channels is None:
            self._load(cur)
        assert self._channels is not None
        return self._channels.get(state, state)


def upsert_relation(
    cur: duckdb.DuckDBPyConnection,
    brand_id: str,
    guide_id: str,
    rel: NewRelation,
    ref: str,
    lookups: Lookups | None = None,
) -> str:
    """Make the relation active as of ``rel.added_at`` (a re-add after a loss starts the relation again)."""
    channel = lookups.channel(cur, rel.state) if lookups else channel_for(cur, brand_id, rel.state)
    add_way = None if rel.add_way is None else str(rel.add_way)
    cur.execute(
        "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, add_way, state, channel_id, source_ref) "
        "VALUES (?, ?, ?, ?, ?, 'active', ?, ?) ON CONFLICT (brand_id, external_userid, guide_id) DO UPDATE SET "
        "added_at = excluded.added_at, add_way = coalesce(excluded.add_way, relations.add_way), state = 'active', "
        "lost_at = NULL, lost_by = NULL, channel_id = coalesce(excluded.channel_id, relations.channel_id), "
        "source_ref = excluded.source_ref",
        [brand_id, rel.external_userid, guide_id, rel.added_at, add_way, channel, ref],
    )
    return "relation active"


def lose_relation(
    cur: duckdb.DuckDBPyConnection, brand_id: str, guide_id: str, external_userid: str, at: datetime, lost_by: str
) -> str:
    """Mark the relation lost (at, by); unknown relations are left alone (nothing to end)."""
    row = cur.execute(
        "SELECT state FROM relations WHERE brand_id = ? AND external_userid = ? AND guide_id = ?",
        [brand_id, external_userid, guide_id],
    ).fetchone()
    if row is None:
        return "no stored relation to end"
    cur.execute(
        "UPDATE relations SET state = 'lost', lost_at = ?, lost_by = ? "
        "WHERE brand_id = ? AND external_userid = ? AND guide_id = ?",
        [at, lost_by, brand_id, external_userid, guide_id],
    )
    return f"relation lost by {lost_by}"


def identities(rel: NewRelation) -> tuple[Identity, ...]:
    """external_userid, and unionid when known."""
    out = [normalize("external_userid", rel.external_userid)]
    if rel.unionid:
        with contextlib.suppress(IdentifierError):
            out.append(normalize("unionid", rel.unionid))
    return tuple(out)


def observe(cur: duckdb.DuckDBPyConnection, brand_id: str, rel: NewRelation, ref: str) -> int:
    """Feed the contact's identifiers to OneID once per ``ref`` (the callback or sync record)."""
    seen = cur.execute(
        "SELECT 1 FROM identity_observations WHERE brand_id = ? AND source_kind = ? AND source_ref = ? LIMIT 1",
        [brand_id, SOURCE_KIND, ref],
    ).fetchone()
    if seen:
        return 0
    traits = {k: v for k, v in {"name": rel.name, "state": rel.state, "wecom_userid": rel.userid}.items() if v}
    return add_observations(cur, brand_id, [Observation(SOURCE_KIND, ref, rel.added_at, identities(rel), traits)])


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
