"""`siyu warehouse export`: Parquet snapshots of the DuckDB warehouse for analytics on Spark (docs/warehouse.md)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
from siyu.services.context import Context
from siyu.stores.analytics_engine import EXPORT_TABLES

runner = CliRunner()


def test_export_writes_every_table_and_replaces_the_snapshot(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = Context.open(settings)
    ctx.warehouse.fetch("INSERT INTO stores VALUES ('b', 's1', '上海店', '上海'), ('b', 's2', 'Hangzhou', NULL)")
    ctx.warehouse.fetch(
        """INSERT INTO events (brand_id, message_id, type, event, properties, timestamp, received_at)
           VALUES ('b', 'm1', 'track', 'Clicked', '{"purpose": "lead_in", "n": 2}', now(), now())"""
    )
    ctx.close()
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    r = runner.invoke(app, ["warehouse", "export", "--to", str(tmp_path / "snap")])
    assert r.exit_code == 0, r.output
    assert f"exported {len(EXPORT_TABLES)} tables" in r.output
    stores = pq.read_table(tmp_path / "snap" / "stores").to_pylist()
    assert sorted((s["store_id"], s["name"], s["city"]) for s in stores) == [
        ("s1", "上海店", "上海"),
        ("s2", "Hangzhou", None),
    ]
    ev = pq.read_table(tmp_path / "snap" / "events").to_pylist()
    assert len(ev) == 1 and '"purpose"' in ev[0]["properties"]  # JSON as its text

    ctx = Context.open(settings)
    ctx.warehouse.fetch("DELETE FROM stores WHERE store_id = 's2'")
    ctx.close()
    assert runner.invoke(app, ["warehouse", "export"]).exit_code == 0  # default folder in the data dir
    again = pq.read_table(settings.data_dir / "warehouse-export" / "stores").to_pylist()
    assert [s["store_id"] for s in again] == ["s1"]
    assert not list((settings.data_dir / "warehouse-export").glob(".*"))  # no staging folders left


def test_export_to_a_file_names_the_option(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    f = tmp_path / "file.txt"
    f.write_text("x")
    r = runner.invoke(app, ["warehouse", "export", "--to", str(f)])
    assert r.exit_code == 2 and "--to" in r.output and "folder" in r.output
