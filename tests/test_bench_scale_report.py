"""bench/scale_report reads the other benches' JSON files (real files in a tmp dir): values per setup, ratios to
the first setup, per-core rates, the saturating resource from the bench's own figures, missing inputs named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import scale_report


def _write(d: Path, name: str, doc: dict[str, Any]) -> None:
    (d / f"{name}.json").write_text(json.dumps(doc))


def _area(report: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(a for a in report["areas"] if a["name"].startswith(prefix))


def _row(area: dict[str, Any], measure: str) -> dict[str, Any]:
    return next(r for r in area["rows"] if r["measure"] == measure)


def test_empty_results_dir_reports_every_input_missing(tmp_path: Path) -> None:
    report = scale_report.run(tmp_path)
    assert (tmp_path / "scale.json").exists()
    assert json.loads((tmp_path / "scale.json").read_text())["missing"] == report["missing"]
    for name in ("ingest.json", "ingest_workers.json", "metrics_spark.json", "journeys_queue.json", "posters.json"):
        assert any(m.endswith(name) for m in report["missing"]), name
    steps = _row(_area(report, "journeys"), "journey steps/s")
    assert steps["values"] == {"sqlite-huey": None, "redis-huey": None}
    assert steps["ratios"] == {"redis-huey / sqlite-huey": None}
    assert "missing" in scale_report.render(report)


def test_reads_figures_and_computes_ratios(tmp_path: Path) -> None:
    _write(
        tmp_path, "ingest", {"events_per_s": 12000, "ack_p99_ms": 80.0, "server_cpu_us_per_event": 50.0, "cpu_cores": 2}
    )
    _write(
        tmp_path,
        "ingest_workers",
        {
            "sqlite": {
                "one_ingest": {"saturation": {"events_per_s": 18000, "p99_ms": 40.0}},
                "two_ingest": {"saturation": {"acks_per_s": 27000, "p99_ms": 30.0}},
            }
        },
    )
    _write(
        tmp_path,
        "metrics_spark",
        {
            "machine_cores": 2,
            "orders": 1_000_000,
            "match": True,
            "duckdb": {"seconds": {"total": 2.0}, "seconds_warm": {"total": 1.0, "cpu": 1.6}, "peak_rss_mb": 500.0},
            "pyspark": {
                "seconds": {"total": 50.0},
                "seconds_warm": {"total": 25.0, "cpu_s": 40.0},
                "tree_peak_rss_mb": 3000.0,
            },
        },
    )
    _write(
        tmp_path,
        "journeys_queue",
        {
            "sqlite": {"steps_per_s": 4000, "jobs_per_s": 250, "enqueue_per_s": 300},
            "redis": {"steps_per_s": 4400, "jobs_per_s": 1000, "enqueue_per_s": 6000},
        },
    )
    _write(
        tmp_path,
        "campaign_burst",
        {
            "single_process_direct": {"assists_per_s": 150.0, "p50_ms": 100.0, "p95_ms": 400.0},
            "public_processes_behind_proxy": {
                "assists_per_s": 600.0,
                "p50_ms": 50.0,
                "p95_ms": 90.0,
                "server_cpu_ms_per_request": 1.25,
            },
            "goal_assists_per_s": 2000,
            "service_in_process": {"helps_per_s": 300.0, "profiled_ms_per_help_by_part": {"fsync": 3.0, "orm": 1.0}},
        },
    )
    report = scale_report.build(tmp_path)

    ingest = _area(report, "ingestion")
    rate = _row(ingest, "acknowledged events/s at saturation")
    assert rate["values"] == {
        "1 serve (ingest.json)": 12000,
        "sqlite.one_ingest.saturation": 18000,
        "sqlite.two_ingest.saturation": 27000,
    }
    assert rate["ratios"]["sqlite.two_ingest.saturation / 1 serve (ingest.json)"] == 2.25
    assert ingest["per_core"]["ingest_events_per_core_s"] == 20000  # 1e6 / 50 µs
    assert "0.60 of 2 cores" in ingest["tops_out"][0]  # 12,000 ev/s × 50 µs

    m = _area(report, "metrics")
    assert _row(m, "steady state")["ratios"] == {"pyspark / duckdb": 25.0}
    assert _row(m, "first call")["ratios"] == {"pyspark / duckdb": 25.0}
    assert _row(m, "peak RSS (Spark: driver + JVM)")["values"] == {"duckdb": 500.0, "pyspark": 3000.0}
    assert m["per_core"] == {
        "duckdb_orders_per_core_s_wall": 500000.0,
        "duckdb_orders_per_cpu_s": 625000,  # bench.metrics calls it "cpu"
        "pyspark_orders_per_core_s_wall": 20000.0,
        "pyspark_orders_per_cpu_s": 25000,
    }

    j = _area(report, "journeys")
    assert _row(j, "queue jobs/s")["ratios"] == {"redis-huey / sqlite-huey": 4.0}
    assert _row(j, "enqueue/s")["ratios"] == {"redis-huey / sqlite-huey": 20.0}
    assert "4.0× the queue jobs/s but steps/s only 1.1×" in j["tops_out"][0]

    burst = _area(report, "campaign")
    assert _row(burst, "assists/s")["ratios"]["in-process / serve"] == 2.0
    assert _row(burst, "assists/s")["ratios"]["serve + serve-public / serve"] == 4.0
    assert _row(burst, "latency (serve + serve-public)")["values"] == {"p50": 50.0, "p95": 90.0}
    assert burst["per_core"]["help_posts_per_core_s"] == 800  # 1000 / 1.25 ms
    assert "fsync is 3.0 of 4.00 ms per help (75%)" in burst["tops_out"][0]

    # journeys.json and posters.json were not written: both are named, everything else was read
    assert report["missing"] == [
        "journeys (Huey queue): journeys.json",
        "posters (750×1334 PNG): posters.json",
        "posters (750×1334 PNG): ms per poster [participant]",
        "posters (750×1334 PNG): ms per poster [campaign's first]",
        "posters (750×1334 PNG): ms per poster [cached]",
        "posters (750×1334 PNG): ms per poster [goal]",
    ]
    assert "journeys.json" in j["inputs"] and j["inputs"]["journeys.json"] == "missing"


def test_ingest_workers_summary_is_read_per_setup(tmp_path: Path) -> None:
    _write(tmp_path, "ingest", {"events_per_s": 10000, "server_cpu_us_per_event": 60.0, "cpu_cores": 2})
    _write(
        tmp_path,
        "ingest_workers",
        {
            "goal": {"events_per_s": 20000, "ack_p99_ms": 50},
            "summary": {
                "sqlite/serve": {"max_events_per_s": 15000, "ack_p99_ms_at_20k": 90.0},
                "sqlite/ingest_x2": {"max_events_per_s": 30000, "ack_p99_ms_at_20k": 30.0},
            },
            "runs": [
                {"state": "sqlite", "setup": "ingest_x2", "cpu_us_per_event_saturated_by_process": {"ingest": 40.0}}
            ],
        },
    )
    ingest = _area(scale_report.build(tmp_path), "ingestion")
    rate = _row(ingest, "acknowledged events/s at saturation")
    assert rate["values"] == {"1 serve (ingest.json)": 10000, "sqlite/serve": 15000, "sqlite/ingest_x2": 30000}
    assert rate["ratios"]["sqlite/ingest_x2 / 1 serve (ingest.json)"] == 3.0
    p99 = _row(ingest, "ack p99 at the goal rate")
    assert p99["values"] == {"sqlite/serve": 90.0, "sqlite/ingest_x2": 30.0}  # the goal is not a setup
    assert p99["ratios"] == {"sqlite/ingest_x2 / sqlite/serve": 0.33}
    assert ingest["notes"] == ["sqlite/ingest_x2: CPU per event at saturation: ingest 40.0 µs"]


def test_get_and_ratio_edge_cases() -> None:
    doc = {"runs": [{"n": 1}, {"n": 2}], "a": {"b": 0}}
    assert scale_report.get(doc, "runs.-1.n") == 2
    assert scale_report.get(doc, "runs.5.n") is None
    assert scale_report.get(doc, "a.b.c") is None
    assert scale_report.ratio(3, 0) is None
    assert scale_report.ratio(True, 1) is None
    assert scale_report.ratio(1, 3) == 0.33
