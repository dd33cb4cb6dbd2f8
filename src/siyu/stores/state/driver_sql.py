"""SQLAlchemy Core statements of hot write paths run straight on the DB-API ``sqlite3`` connection when the
connection is SQLite (sqlite3 runs a prepared statement in ~5 µs; SQLAlchemy's execution layer adds ~50 µs to
each, ~100 µs to a savepoint), through SQLAlchemy elsewhere (PostgreSQL).

Nothing changes but the cost: the SQL is the statement compiled once by the connection's own dialect with the
keys of the parameters given (as SQLAlchemy compiles it), each parameter goes through its type's bind processor
(dates as ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans 0 / 1, JSON serialized), RETURNING / SELECT columns through
their result processors (JSON decoded, dates parsed), and a driver error is raised as SQLAlchemy wraps it
(``sqlalchemy.exc.IntegrityError`` …). A statement SQLAlchemy would complete at execution time (Python-side
column defaults, post-compile parameters) keeps the SQLAlchemy path.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

RAW_SQLITE = True  # False: every statement through SQLAlchemy (the tests compare both paths)

_Proc = Callable[[Any], Any] | None


def sqlite_of(con: Connection) -> sqlite3.Connection | None:
    """The DB-API connection under ``con`` when it is SQLite (and the raw path is on), else None."""
    if not RAW_SQLITE or con.dialect.name != "sqlite":
        return None
    raw = con.connection.driver_connection
    return raw if isinstance(raw, sqlite3.Connection) else None


class _Plan:
    __slots__ = ("binds", "procs", "row", "sql")

    def __init__(self, sql: str, binds: list[tuple[str, Any, _Proc]], row: Any, procs: list[_Proc]) -> None:
        self.sql, self.binds, self.row, self.procs = sql, binds, row, procs


def _plan(stmt: Any, dialect: Dialect, keys: Sequence[str]) -> _Plan | None:
    compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys))
    if (
        dialect.paramstyle != "qmark"
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or "POSTCOMPILE" in compiled.string
    ):
        return None
    binds = []
    for name in compiled.positiontup or ():
        bp = compiled.binds[name]
        binds.append((name, bp.effective_value, bp.type.dialect_impl(dialect).bind_processor(dialect)))
    cols = compiled._result_columns  # (keyname, name, objects, type) of RETURNING / SELECT columns
    row = namedtuple("Row", [c[0] for c in cols], rename=True) if cols else None  # type: ignore[misc]
    procs = [c[3].dialect_impl(dialect).result_processor(dialect, None) for c in cols]
    return _Plan(compiled.string, binds, row, procs)


class Prepared:
    """One Core statement (or ``text()``), run on the batch's connection: ``first`` (a row of RETURNING / SELECT,
    or None), ``rowcount``."""

    __slots__ = ("_plans", "stmt")

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[Dialect, tuple[str, ...]], _Plan | None] = {}

    def _raw(self, con: Connection, params: Mapping[str, Any]) -> tuple[_Plan, sqlite3.Cursor] | None:
        raw = sqlite_of(con)
        if raw is None:
            return None
        key = (con.dialect, tuple(params))
        if key not in self._plans:
            self._plans[key] = _plan(self.stmt, con.dialect, key[1])
        plan = self._plans[key]
        if plan is None:
            return None
        values = []
        for name, default, proc in plan.binds:
            v = params.get(name, default)
            values.append(v if proc is None else proc(v))
        try:
            return plan, raw.execute(plan.sql, values)
        except sqlite3.Error as err:
            raise DBAPIError.instance(plan.sql, values, err, sqlite3.Error) from err

    def first(self, con: Connection, params: Mapping[str, Any]) -> Any:
        """The first row (named columns, decoded as SQLAlchemy decodes them) or None."""
        got = self._raw(con, params)
        if got is None:
            return con.execute(self.stmt, params).first()
        plan, cur = got
        rows = cur.fetchall()  # RETURNING: run the statement to its end
        if not rows or plan.row is None:
            return None
        return plan.row(*(v if p is None else p(v) for v, p in zip(rows[0], plan.procs, strict=True)))

    def rowcount(self, con: Connection, params: Mapping[str, Any]) -> int:
        """Run it; the rows it changed."""
        got = self._raw(con, params)
        if got is None:
            return int(con.execute(self.stmt, params).rowcount)  # type: ignore[attr-defined]
        return int(got[1].rowcount)


class Savepoint:
    """``con.begin_nested()`` — on SQLite a raw ``SAVEPOINT name`` (``commit`` = RELEASE, ``rollback`` = ROLLBACK
    TO + RELEASE)."""

    __slots__ = ("_name", "_raw", "_sa")

    def __init__(self, con: Connection, name: str) -> None:
        self._raw = sqlite_of(con)
        self._name = name
        if self._raw is not None:
            self._raw.execute(f"SAVEPOINT {name}")
            self._sa = None
        else:
            self._sa = con.begin_nested()

    def commit(self) -> None:
        if self._raw is not None:
            self._raw.execute(f"RELEASE {self._name}")
        elif self._sa is not None:
            self._sa.commit()

    def rollback(self) -> None:
        if self._raw is not None:
            self._raw.execute(f"ROLLBACK TO {self._name}")
            self._raw.execute(f"RELEASE {self._name}")
        elif self._sa is not None:
            self._sa.rollback()
