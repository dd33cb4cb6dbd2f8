"""The help path's statements, run on the batch's connection: on SQLite straight on the DB-API connection
(sqlite3 runs a prepared statement in ~5 µs; SQLAlchemy's execution layer adds ~50 µs to each, and a help is
4–5 statements in a batch of hundreds), elsewhere (PostgreSQL) through SQLAlchemy. Same SQL, same values: dates
are bound as SQLAlchemy's SQLite ``DateTime`` stores them (``YYYY-MM-DD HH:MM:SS.ffffff``), booleans as 0 / 1.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Table, TextClause, bindparam, text

from siyu.stores.state.campaign_models import CampaignHelpRow
from siyu.stores.state.driver_sql import sqlite_of

_H: Table = CampaignHelpRow.__table__  # type: ignore[assignment]
_INSERT_HELP = _H.insert()  # prebuilt: executed with parameters, compiled once
_HELP_COLUMNS = [c.name for c in _H.columns if c.name != "id"]
_RAW_INSERT_HELP = (
    f"INSERT INTO campaign_helps ({', '.join(_HELP_COLUMNS)}) VALUES ({', '.join(':' + c for c in _HELP_COLUMNS)})"
)
_ACCEPTED = "state IN ('pending_carrier', 'counted', 'revoked')"
_COUNTS_SQL = (
    "SELECT "
    "(SELECT count(*) FROM campaign_help_keys WHERE campaign_id = :c AND key IN {keys}), "
    "CASE WHEN :dev = '' THEN 0 ELSE (SELECT count(*) FROM campaign_helps WHERE campaign_id = :c "
    f"AND device_id = :dev AND created_at >= :day AND {_ACCEPTED}) END, "
    "CASE WHEN :ip = '' THEN 0 ELSE (SELECT count(*) FROM campaign_helps WHERE campaign_id = :c "
    f"AND ip = :ip AND created_at >= :hour AND {_ACCEPTED}) END, "
    "(SELECT count(*) FROM campaign_helps WHERE brand_id = :b AND helper_key = :hk AND created_at >= :day "
    f"AND {_ACCEPTED}), "
    "p.helps_counted, p.helps_pending, p.tiers_reached FROM campaign_participants p WHERE p.id = :sid"
)
_COUNTS = text(_COUNTS_SQL.format(keys=":keys")).bindparams(
    bindparam("keys", expanding=True), bindparam("day", type_=DateTime()), bindparam("hour", type_=DateTime())
)
_BUMP_SQL = {
    col: f"UPDATE campaign_participants SET {col} = {col} + 1 WHERE id = :sid "
    "RETURNING helps_counted, helps_pending, tiers_reached"
    for col in ("helps_counted", "helps_pending")
}
_BUMP = {col: text(sql) for col, sql in _BUMP_SQL.items()}
_COUNTERS_SQL = "SELECT helps_counted, helps_pending FROM campaign_participants WHERE id = :sid"
_COUNTERS = text(_COUNTERS_SQL)


@functools.cache
def _keys_sql(n: int) -> str:
    return "INSERT INTO campaign_help_keys (campaign_id, key, help_id) VALUES " + ", ".join(
        f"(:c, :k{i}, :h)" for i in range(n)
    )


@functools.cache
def _insert_keys(n: int) -> TextClause:
    return text(_keys_sql(n))


@functools.cache
def _raw_counts(n: int) -> str:
    return _COUNTS_SQL.format(keys="(" + ", ".join(f":k{i}" for i in range(n)) + ")")


def _v(value: Any) -> Any:
    if isinstance(value, datetime):  # as strftime("%Y-%m-%d %H:%M:%S.%f"), a tenth of its time
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


class HelpSql:
    """The help statements on one connection (inside the writer's transaction)."""

    def __init__(self, con: Connection) -> None:
        self.con = con
        self.raw: sqlite3.Connection | None = sqlite_of(con)

    def counts(self, keys: list[str], params: dict[str, Any]) -> tuple[Any, ...]:
        """(already helped, device today, IP last hour, person today, counted, pending, tiers reached)."""
        if self.raw is not None:
            values = {k: _v(v) for k, v in params.items()} | {f"k{i}": k for i, k in enumerate(keys)}
            got = self.raw.execute(_raw_counts(len(keys)), values).fetchone()
        else:
            got = self.con.execute(_COUNTS, params | {"keys": keys}).one()
        return tuple(got)

    def insert_help(self, row: dict[str, Any]) -> int:
        """The help row; its id."""
        if self.raw is not None:
            cur = self.raw.execute(_RAW_INSERT_HELP, {c: _v(row.get(c)) for c in _HELP_COLUMNS})
            return int(cur.lastrowid or 0)
        return int(self.con.execute(_INSERT_HELP, row).inserted_primary_key[0])  # type: ignore[index]

    def insert_keys(self, campaign_id: str, help_id: int, keys: list[str]) -> None:
        """The person's help keys in one INSERT (unique per campaign)."""
        values = {"c": campaign_id, "h": help_id, **{f"k{i}": k for i, k in enumerate(keys)}}
        if self.raw is not None:
            self.raw.execute(_keys_sql(len(keys)), values)
        else:
            self.con.execute(_insert_keys(len(keys)), values)

    def bump(self, column: str, sharer_id: str) -> tuple[int, int, int]:
        """``column`` + 1 on the sharer; (counted, pending, tiers reached) after it."""
        if self.raw is not None:
            got = self.raw.execute(_BUMP_SQL[column], {"sid": sharer_id}).fetchone()
        else:
            got = self.con.execute(_BUMP[column], {"sid": sharer_id}).one()
        return int(got[0]), int(got[1]), int(got[2])

    def counters(self, sharer_id: str) -> tuple[int, int]:
        """The sharer's (counted, pending)."""
        if self.raw is not None:
            got = self.raw.execute(_COUNTERS_SQL, {"sid": sharer_id}).fetchone()
        else:
            got = self.con.execute(_COUNTERS, {"sid": sharer_id}).one()
        return int(got[0]), int(got[1])
