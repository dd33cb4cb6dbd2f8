"""Customer-data warehouse: DuckDB file by default, read through Ibis for every analytic query.

Writes (ingestion, imports, OneID) go through this adapter; reads for analytics use ``Warehouse.ibis``.
Records keep the raw identifiers they arrived with; which customer they belong to is always derived by joining
``identities`` (identifier → customer_id), so merges and unmerges re-attribute history without rewriting it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
from ibis.backends.duckdb import Backend as IbisDuckDB

SCHEMA_VERSION = 1

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS wh_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    # Segment-shaped events. (brand_id, message_id) is unique: retries are stored once.
    """CREATE TABLE IF NOT EXISTS events (
        brand_id VARCHAR NOT NULL, message_id VARCHAR NOT NULL, type VARCHAR NOT NULL,
        event VARCHAR, name VARCHAR, user_id VARCHAR, anonymous_id VARCHAR, group_id VARCHAR,
        previous_id VARCHAR, properties JSON, traits JSON, context JSON,
        timestamp TIMESTAMP NOT NULL, original_timestamp TIMESTAMP, sent_at TIMESTAMP,
        received_at TIMESTAMP NOT NULL, write_key_id VARCHAR,
        PRIMARY KEY (brand_id, message_id))""",
    # How many batches of each ingest-log segment are loaded (written in the loading transaction; see
    # siyu.services.ingest.log): recovery after a crash loads the rest.
    """CREATE TABLE IF NOT EXISTS ingest_log_loaded (
        segment VARCHAR PRIMARY KEY, batches INTEGER NOT NULL, updated_at TIMESTAMP)""",
    # Evidence for OneID: identifiers seen together in one record. Resolved in obs_id order by OneID.
    """CREATE SEQUENCE IF NOT EXISTS obs_seq START 1""",
    """CREATE TABLE IF NOT EXISTS identity_observations (
        obs_id BIGINT PRIMARY KEY DEFAULT nextval('obs_seq'), brand_id VARCHAR NOT NULL,
        source_kind VARCHAR NOT NULL, source_ref VARCHAR NOT NULL, observed_at TIMESTAMP NOT NULL,
        identifiers STRUCT(type VARCHAR, value VARCHAR)[] NOT NULL, traits JSON)""",
    # identifier → customer map (the OneID partition).
    """CREATE TABLE IF NOT EXISTS identities (
        brand_id VARCHAR NOT NULL, id_type VARCHAR NOT NULL, id_value VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL, first_seen_at TIMESTAMP, last_seen_at TIMESTAMP,
        PRIMARY KEY (brand_id, id_type, id_value))""",
    """CREATE TABLE IF NOT EXISTS customers (
        brand_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, name VARCHAR, phone VARCHAR,
        email VARCHAR, gender VARCHAR, birthday DATE, city VARCHAR, traits JSON,
        created_at TIMESTAMP, updated_at TIMESTAMP, PRIMARY KEY (brand_id, customer_id))""",
    """CREATE TABLE IF NOT EXISTS identity_merges (
        brand_id VARCHAR NOT NULL, merge_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,
        absorbed_customer_id VARCHAR NOT NULL, rule VARCHAR NOT NULL, id_type VARCHAR, id_value VARCHAR,
        source_kind VARCHAR, source_ref VARCHAR, merged_at TIMESTAMP NOT NULL, undone_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS identity_conflicts (
        brand_id VARCHAR NOT NULL, conflict_id VARCHAR NOT NULL, customer_id VARCHAR, other_customer_id VARCHAR,
        id_type VARCHAR, id_value VARCHAR, reason VARCHAR NOT NULL, source_kind VARCHAR, source_ref VARCHAR,
        detected_at TIMESTAMP NOT NULL, resolved_at TIMESTAMP)""",
    # Operator decisions that two identifiers must never share a person (written by unmerge).
    """CREATE TABLE IF NOT EXISTS identity_splits (
        brand_id VARCHAR NOT NULL, a_type VARCHAR NOT NULL, a_value VARCHAR NOT NULL,
        b_type VARCHAR NOT NULL, b_value VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, reason VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS stores (
        brand_id VARCHAR NOT NULL, store_id VARCHAR NOT NULL, name VARCHAR NOT NULL, city VARCHAR,
        PRIMARY KEY (brand_id, store_id))""",
    """CREATE TABLE IF NOT EXISTS guides (
        brand_id VARCHAR NOT NULL, guide_id VARCHAR NOT NULL, name VARCHAR NOT NULL, store_id VARCHAR,
        wecom_userid VARCHAR, active BOOLEAN DEFAULT TRUE, PRIMARY KEY (brand_id, guide_id))""",
    """CREATE TABLE IF NOT EXISTS channels (
        brand_id VARCHAR NOT NULL, channel_id VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        PRIMARY KEY (brand_id, channel_id))""",
    """CREATE TABLE IF NOT EXISTS channel_spend (
        brand_id VARCHAR NOT NULL, channel_id VARCHAR NOT NULL, day DATE NOT NULL,
        spend DECIMAL(18, 2) NOT NULL, exposures BIGINT DEFAULT 0, PRIMARY KEY (brand_id, channel_id, day))""",
    """CREATE TABLE IF NOT EXISTS touchpoints (
        brand_id VARCHAR NOT NULL, touchpoint_id VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        guide_id VARCHAR, PRIMARY KEY (brand_id, touchpoint_id))""",
    # customer ↔ guide WeCom relations, keyed by the customer's external_userid.
    """CREATE TABLE IF NOT EXISTS relations (
        brand_id VARCHAR NOT NULL, external_userid VARCHAR NOT NULL, guide_id VARCHAR NOT NULL,
        added_at TIMESTAMP NOT NULL, add_way VARCHAR, state VARCHAR NOT NULL, lost_at TIMESTAMP,
        lost_by VARCHAR, channel_id VARCHAR, source_ref VARCHAR,
        PRIMARY KEY (brand_id, external_userid, guide_id))""",
    # customer-group (社群) membership, keyed by an identifier of the member.
    """CREATE TABLE IF NOT EXISTS group_members (
        brand_id VARCHAR NOT NULL, touchpoint_id VARCHAR NOT NULL, id_type VARCHAR NOT NULL,
        id_value VARCHAR NOT NULL, joined_at TIMESTAMP NOT NULL, left_at TIMESTAMP,
        PRIMARY KEY (brand_id, touchpoint_id, id_type, id_value))""",
    # the guides who administer a customer group (WeCom groupchat/get admin_list), besides its owner.
    """CREATE TABLE IF NOT EXISTS group_admins (
        brand_id VARCHAR NOT NULL, touchpoint_id VARCHAR NOT NULL, guide_id VARCHAR NOT NULL,
        PRIMARY KEY (brand_id, touchpoint_id, guide_id))""",
    """CREATE TABLE IF NOT EXISTS orders (
        brand_id VARCHAR NOT NULL, order_id VARCHAR NOT NULL, customer_ref_type VARCHAR NOT NULL,
        customer_ref VARCHAR NOT NULL, ordered_at TIMESTAMP NOT NULL, amount DECIMAL(18, 2) NOT NULL,
        currency VARCHAR DEFAULT 'CNY', status VARCHAR DEFAULT 'paid', channel_id VARCHAR, store_id VARCHAR,
        guide_id VARCHAR, source_ref VARCHAR, PRIMARY KEY (brand_id, order_id))""",
    """CREATE TABLE IF NOT EXISTS order_lines (
        brand_id VARCHAR NOT NULL, order_id VARCHAR NOT NULL, line_no INTEGER NOT NULL, sku VARCHAR,
        name VARCHAR, quantity DECIMAL(18, 3) NOT NULL, unit_price DECIMAL(18, 4) NOT NULL,
        amount DECIMAL(18, 2) NOT NULL, PRIMARY KEY (brand_id, order_id, line_no))""",
    """CREATE TABLE IF NOT EXISTS tags (
        brand_id VARCHAR NOT NULL, tag_id VARCHAR NOT NULL, name VARCHAR NOT NULL, source VARCHAR NOT NULL,
        rule VARCHAR, PRIMARY KEY (brand_id, tag_id))""",
    # Tags are attached to an identifier (so they follow the person through merges and splits).
    """CREATE TABLE IF NOT EXISTS identifier_tags (
        brand_id VARCHAR NOT NULL, id_type VARCHAR NOT NULL, id_value VARCHAR NOT NULL, tag_id VARCHAR NOT NULL,
        source VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (brand_id, id_type, id_value, tag_id))""",
    # OneID: watermark of the last resolved observation per brand, and the two identifiers + observation of a
    # merge's evidence (id_type/id_value on the absorbed side, other_* on the surviving side).
    """CREATE TABLE IF NOT EXISTS oneid_state (
        brand_id VARCHAR PRIMARY KEY, last_obs_id BIGINT NOT NULL, updated_at TIMESTAMP)""",
    """ALTER TABLE identity_merges ADD COLUMN IF NOT EXISTS other_type VARCHAR""",
    """ALTER TABLE identity_merges ADD COLUMN IF NOT EXISTS other_value VARCHAR""",
    """ALTER TABLE identity_merges ADD COLUMN IF NOT EXISTS obs_id BIGINT""",
    """ALTER TABLE identity_conflicts ADD COLUMN IF NOT EXISTS other_type VARCHAR""",
    """ALTER TABLE identity_conflicts ADD COLUMN IF NOT EXISTS other_value VARCHAR""",
    # Customer-segment membership (siyu.services.segments): one row per stay; exited_at NULL = still a member.
    """CREATE TABLE IF NOT EXISTS segment_members (
        brand_id VARCHAR NOT NULL, segment_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,
        entered_at TIMESTAMP NOT NULL, exited_at TIMESTAMP)""",
    # CLV predictions of each brand's latest fit (siyu.services.clv): replaced as a whole by every refit.
    """CREATE TABLE IF NOT EXISTS clv_predictions (
        brand_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, fit_id VARCHAR NOT NULL, x DOUBLE NOT NULL,
        t_x DOUBLE NOT NULL, "T" DOUBLE NOT NULL, monetary DOUBLE NOT NULL, p_alive DOUBLE NOT NULL,
        expected_purchases DOUBLE NOT NULL, expected_spend DOUBLE NOT NULL, clv DOUBLE NOT NULL,
        computed_at TIMESTAMP NOT NULL, PRIMARY KEY (brand_id, customer_id))""",
)


class Warehouse:
    """One process's handle on the customer-data warehouse.

    DuckDB allows one writing process per file; inside it, every thread takes its own cursor via
    ``cursor()``.  ``write_lock`` serialises multi-statement writers that must not interleave (OneID).
    """

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []  # every thread's cursor, closed by close()
        self._cursors_lock = threading.Lock()
        self.write_lock = threading.RLock()
        if not read_only:
            self.migrate()

    def migrate(self) -> None:
        """Create missing tables (idempotent)."""
        con = self._con
        for stmt in DDL:
            con.execute(stmt)
        con.execute("INSERT OR REPLACE INTO wh_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection for the calling thread."""
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cur = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run statements in one transaction on this thread's cursor; commit on success."""
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    @property
    def ibis(self) -> IbisDuckDB:
        """An Ibis backend over the same database for analytic reads, bound to the calling thread's cursor.

        A DuckDB connection must not execute on two threads at once, so each thread (API worker, console event
        loop, Huey worker) gets its own backend.
        """
        backend: IbisDuckDB | None = getattr(self._local, "ibis", None)
        if backend is None:
            backend = ibis.duckdb.from_connection(self.cursor())
            self._local.ibis = backend
        return backend

    def table(self, name: str) -> ir.Table:
        return self.ibis.table(name)

    def fetch(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a small operational query (not analytics) and return all rows."""
        return self.cursor().execute(sql, params or []).fetchall()

    def checkpoint(self) -> None:
        self._con.execute("CHECKPOINT")

    def close(self) -> None:
        """Close every thread's cursor and the database, releasing the file lock."""
        with self._cursors_lock:
            cursors, self._cursors = self._cursors, []
        for cur in cursors:
            cur.close()
        self._con.close()
