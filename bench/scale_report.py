"""One side-by-side report of the scale benchmarks (issue 10), read from the JSON the other benches wrote.

Runs last in ``make bench``. For each comparison — ingestion with 1 vs 2 API/ingest workers, metrics on DuckDB vs
PySpark, journey steps on SQLite-Huey vs Redis-Huey, the landing-page burst, posters — it reads the figures from
``bench/results/<bench>.json`` (nothing is hard-coded), lists each measure per setup with its ratio to the first
setup, derives the per-core rates the projection in ``docs/scale.md`` uses, and says where the measure tops out on
this machine (which resource saturates: derived from the bench's own profile/CPU figures where it has them).
A missing file or key is reported as missing, never guessed. Writes ``bench/results/scale.json`` and prints a table;
``python -m bench.scale_report [results_dir]``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
OUTPUT = "scale.json"
RESULT_NAME = "scale"  # bench/run.py writes this module's result to results/scale.json
Doc = dict[str, Any]


def get(doc: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``a.b.0.c``; a negative number indexes lists from the end); None if absent."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return None
        else:
            return None
        if cur is None:
            return None
    return cur


def first(doc: Any, *paths: str) -> Any:
    """The value of the first of ``paths`` present in ``doc`` (None if none is)."""
    for p in paths:
        v = get(doc, p)
        if v is not None:
            return v
    return None


def ratio(value: Any, base: Any) -> float | None:
    """``value / base`` rounded to 2 places; None when either is missing, not a number, or ``base`` is 0."""
    if not isinstance(value, int | float) or not isinstance(base, int | float) or isinstance(value, bool):
        return None
    if isinstance(base, bool) or base == 0:
        return None
    return round(value / base, 2)


def walk(doc: Any, keys: tuple[str, ...], prefix: str = "") -> Iterator[tuple[str, Doc]]:
    """Every dict inside ``doc`` (depth first, in file order) holding one of ``keys``, with its dotted path."""
    if isinstance(doc, dict):
        if any(k in doc for k in keys):
            yield prefix or "(top)", doc
        for k, v in doc.items():
            yield from walk(v, keys, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from walk(v, keys, f"{prefix}.{i}" if prefix else str(i))


@dataclass
class Row:
    """One measure of one comparison: a value per setup (None = missing), ratios to the first setup."""

    area: str
    measure: str
    unit: str
    values: dict[str, Any]
    better: str = "higher"  # or "lower"
    ratios: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = list(self.values)
        if len(labels) > 1:
            base = self.values[labels[0]]
            self.ratios = {f"{lab} / {labels[0]}": ratio(self.values[lab], base) for lab in labels[1:]}


@dataclass
class Area:
    """One comparison: its input files (present or missing), rows, per-core rates and where it tops out."""

    name: str
    inputs: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    per_core: dict[str, float | None] = field(default_factory=dict)
    tops_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _load(results: Path, name: str) -> tuple[Doc | None, str]:
    path = results / f"{name}.json"
    if not path.exists():
        return None, "missing"
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return None, f"unreadable: {e}"
    stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (doc if isinstance(doc, dict) else None), f"read ({stamp})"


def _per_s(rate: Any, cores: Any) -> float | None:
    return round(rate / cores, 1) if isinstance(rate, int | float) and isinstance(cores, int) and cores else None


# --- the comparisons ------------------------------------------------------------------------------------------

INGEST_RATE = ("events_per_s", "acks_per_s", "acked_per_s")
INGEST_P99 = ("ack_p99_ms", "p99_ms")


def ingest(results: Path) -> Area:
    """1 ``siyu serve`` (bench/ingest.py) and the setups of bench/ingest_workers.py: its ``summary`` (``state/setup``
    → ``max_events_per_s``, ``ack_p99_ms_at_20k``) when it has one, else every object in its JSON that carries an
    events/acks per second figure (named by its path; the ``goal`` is not a setup)."""
    single, s1 = _load(results, "ingest")
    workers, s2 = _load(results, "ingest_workers")
    area = Area("ingestion (/v1/batch)", {"ingest.json": s1, "ingest_workers.json": s2})
    rates: dict[str, Any] = {"1 serve (ingest.json)": first(single, *INGEST_RATE) if single else None}
    p99: dict[str, Any] = {}
    summary = get(workers, "summary")
    if isinstance(summary, dict) and summary:
        for label, d in summary.items():
            rates[label] = first(d, "max_events_per_s", *INGEST_RATE)
            p99[label] = first(d, "ack_p99_ms_at_20k", *INGEST_P99)
        for r in get(workers, "runs") or []:
            split = get(r, "cpu_us_per_event_saturated_by_process")
            if isinstance(split, dict) and split:
                parts = ", ".join(f"{k} {v} µs" for k, v in split.items())
                area.notes.append(f"{r.get('state')}/{r.get('setup')}: CPU per event at saturation: {parts}")
    elif workers is not None:
        for path, d in walk(workers, INGEST_RATE):
            if not path.startswith("goal"):
                rates[path] = first(d, *INGEST_RATE)
                p99[path] = first(d, *INGEST_P99)
    else:
        rates["1 vs 2 ingest workers (ingest_workers.json)"] = None
        p99["1 vs 2 ingest workers (ingest_workers.json)"] = None
    area.rows.append(Row(area.name, "acknowledged events/s at saturation", "ev/s", rates))
    area.rows.append(Row(area.name, "ack p99 at the goal rate", "ms", p99, better="lower"))
    us = get(single, "server_cpu_us_per_event")
    area.per_core["ingest_events_per_core_s"] = round(1e6 / us) if isinstance(us, int | float) and us else None
    cores = first(single, "cpu_cores", "cores")
    rate = first(single, *INGEST_RATE)
    if isinstance(us, int | float) and isinstance(rate, int | float) and isinstance(cores, int) and cores:
        busy = rate * us / 1e6  # cores the server kept busy
        area.tops_out.append(
            f"CPU of the API process: {us} µs CPU per event → {busy:.2f} of {cores} cores busy at {rate} ev/s "
            "(one Python process, one GIL: the ack path, the DuckDB loader thread and OneID share it); every "
            "batch also waits for its fsync. DuckDB allows one writing process, so more API processes only help "
            "if they append to the shared log and one warehouse process loads it (ingest_workers)."
        )
    else:
        area.tops_out.append("missing: server CPU per event (ingest.json)")
    return area


def metrics(results: Path) -> Area:
    """RFM + AIPL + lifecycle on DuckDB vs PySpark local mode (bench/metrics_spark.py)."""
    doc, status = _load(results, "metrics_spark")
    area = Area("metrics (RFM + AIPL + lifecycle)", {"metrics_spark.json": status})
    d = doc or {}
    orders = get(d, "orders")
    area.notes.append(f"orders: {orders if orders is not None else 'missing'}; results match: {get(d, 'match')}")
    for label, key in (("first call", "seconds.total"), ("steady state", "seconds_warm.total")):
        area.rows.append(
            Row(
                area.name, label, "s", {"duckdb": get(d, f"duckdb.{key}"), "pyspark": get(d, f"pyspark.{key}")}, "lower"
            )
        )
    rss = {"duckdb": get(d, "duckdb.peak_rss_mb"), "pyspark": first(d, "pyspark.tree_peak_rss_mb")}
    area.rows.append(Row(area.name, "peak RSS (Spark: driver + JVM)", "MB", rss, "lower"))
    cores = get(d, "machine_cores")
    for engine in ("duckdb", "pyspark"):
        warm = get(d, f"{engine}.seconds_warm.total")
        rate = orders / warm if isinstance(orders, int) and isinstance(warm, int | float) and warm else None
        # wall time × all cores: a floor when other jobs share the cores (their load average is in the notes)
        area.per_core[f"{engine}_orders_per_core_s_wall"] = _per_s(rate, cores)
        # CPU seconds of the warm call where the bench measures them (Spark: driver + JVM; DuckDB: its process)
        cpu = first(d, f"{engine}.seconds_warm.cpu_s", f"{engine}.seconds_warm.cpu")
        ok = isinstance(orders, int) and isinstance(cpu, int | float) and cpu > 0
        area.per_core[f"{engine}_orders_per_cpu_s"] = round(orders / cpu) if ok else None
    area.tops_out.append(
        "DuckDB: CPU (both cores, vectorised; the whole brand is one process's memory, the single writer's file); "
        "Spark local: CPU of the JVM (query planning per call, shuffles between 2 local executors) — Spark pays "
        "off only when executors are added, on data one machine cannot hold."
    )
    load = [get(d, "duckdb.load_before"), get(d, "pyspark.load_before"), get(d, "pyspark.load_after")]
    if any(x is not None for x in load):
        area.notes.append(f"load average (1/5/15 min) duckdb before, spark before/after: {load}")
    return area


def journeys(results: Path) -> Area:
    """Journey steps and raw queue jobs on SQLite-Huey vs Redis-Huey (bench/journeys_queue.py), and the
    largest single-queue run of bench/journeys.py."""
    doc, status = _load(results, "journeys_queue")
    big, status2 = _load(results, "journeys")
    area = Area("journeys (Huey queue)", {"journeys_queue.json": status, "journeys.json": status2})
    d = doc or {}
    for measure, key in (
        ("journey steps/s", "steps_per_s"),
        ("queue jobs/s", "jobs_per_s"),
        ("enqueue/s", "enqueue_per_s"),
    ):
        area.rows.append(
            Row(
                area.name, measure, "/s", {"sqlite-huey": get(d, f"sqlite.{key}"), "redis-huey": get(d, f"redis.{key}")}
            )
        )
    runs = get(big, "runs") if big else None
    if isinstance(runs, list) and runs:
        last = max(runs, key=lambda r: r.get("customers", 0) if isinstance(r, dict) else 0)
        area.per_core["journey_steps_per_s_one_worker"] = last.get("steps_per_s")
        area.notes.append(
            f"journeys.json: {last.get('customers')} customers, {last.get('steps_per_s')} steps/s, 1 worker"
        )
    steps_ratio = ratio(get(d, "redis.steps_per_s"), get(d, "sqlite.steps_per_s"))
    jobs_ratio = ratio(get(d, "redis.jobs_per_s"), get(d, "sqlite.jobs_per_s"))
    if steps_ratio is not None and jobs_ratio is not None:
        area.tops_out.append(
            f"Redis moves {jobs_ratio}× the queue jobs/s but steps/s only {steps_ratio}×: the queue is not what "
            "limits steps; the single SQLite state-DB writer (a step row + entry update per step, one fsync'd "
            "commit per batch) is. PostgreSQL state with several workers is the next step."
        )
    else:
        area.tops_out.append("missing: steps/jobs per second on one of the queues")
    return area


def campaign_burst(results: Path) -> Area:
    """Assists/s over HTTP — ``siyu serve`` alone and with ``serve-public`` processes — vs the help use case
    in-process (bench/campaign_burst.py), and its profile."""
    doc, status = _load(results, "campaign_burst")
    area = Area("campaign burst (assists)", {"campaign_burst.json": status})
    d = doc or {}
    single, public = "single_process_direct", "public_processes_behind_proxy"
    area.rows.append(
        Row(
            area.name,
            "assists/s",
            "/s",
            {
                "serve": get(d, f"{single}.assists_per_s"),
                "serve + serve-public": get(d, f"{public}.assists_per_s"),
                "in-process": get(d, "service_in_process.helps_per_s"),
                "goal": get(d, "goal_assists_per_s"),
            },
        )
    )
    area.rows.append(
        Row(
            area.name,
            "latency (serve + serve-public)",
            "ms",
            {"p50": get(d, f"{public}.p50_ms"), "p95": get(d, f"{public}.p95_ms")},
            "lower",
        )
    )
    cpu = get(d, f"{public}.server_cpu_ms_per_request")
    area.per_core["assists_per_s_one_process"] = get(d, f"{single}.assists_per_s")
    area.per_core["help_posts_per_core_s"] = round(1000 / cpu) if isinstance(cpu, int | float) and cpu else None
    parts = get(d, "service_in_process.profiled_ms_per_help_by_part")
    if isinstance(parts, dict) and parts:
        total = sum(v for v in parts.values() if isinstance(v, int | float)) or 1.0
        top, ms = max(parts.items(), key=lambda kv: kv[1] if isinstance(kv[1], int | float) else -1)
        area.tops_out.append(
            f"the help writer: {top} is {ms} of {total:.2f} ms per help ({ms / total:.0%}); the public pages scale "
            "by processes (serve-public), the state database's help lock serialises the writes."
        )
    else:
        area.tops_out.append("missing: the in-process profile (service_in_process.profiled_ms_per_help_by_part)")
    return area


def posters(results: Path) -> Area:
    """Poster rendering (bench/posters.py): ms per poster, CPU ms, cached."""
    doc, status = _load(results, "posters")
    area = Area("posters (750×1334 PNG)", {"posters.json": status})
    d = doc or {}
    area.rows.append(
        Row(
            area.name,
            "ms per poster",
            "ms",
            {
                "participant": get(d, "participant.p50_ms"),
                "campaign's first": get(d, "cold_p50_ms"),
                "cached": get(d, "cached.p50_ms"),
                "goal": get(d, "goal_ms"),
            },
            "lower",
        )
    )
    cpu = get(d, "participant.cpu_ms")
    area.per_core["posters_per_core_s"] = round(1000 / cpu) if isinstance(cpu, int | float) and cpu else None
    wall = get(d, "participant.p50_ms")
    if isinstance(cpu, int | float) and isinstance(wall, int | float):
        area.tops_out.append(
            f"CPU of the rendering process (Pillow): {cpu} ms CPU of {wall} ms wall per poster; the rest is waiting "
            "for a core on this shared machine. Cached posters are a memory lookup."
        )
    else:
        area.tops_out.append("missing: CPU ms per participant poster")
    return area


AREAS: tuple[Callable[[Path], Area], ...] = (ingest, metrics, journeys, campaign_burst, posters)


def build(results: Path = RESULTS) -> dict[str, Any]:
    """The report as a JSON-able dict: per area its inputs, rows (values per setup, ratios), per-core rates,
    where it tops out; ``missing`` lists every input file and value that was not there."""
    areas = [f(results) for f in AREAS]
    missing: list[str] = []
    for a in areas:
        missing += [f"{a.name}: {name}" for name, st in a.inputs.items() if not st.startswith("read")]
        for r in a.rows:
            missing += [f"{a.name}: {r.measure} [{lab}]" for lab, v in r.values.items() if v is None]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results_dir": str(results),
        "areas": [
            {
                "name": a.name,
                "inputs": a.inputs,
                "rows": [
                    {"measure": r.measure, "unit": r.unit, "better": r.better, "values": r.values, "ratios": r.ratios}
                    for r in a.rows
                ],
                "per_core": a.per_core,
                "tops_out": a.tops_out,
                "notes": a.notes,
            }
            for a in areas
        ],
        "missing": missing,
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "missing"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def render(report: dict[str, Any]) -> str:
    """The report as a plain-text table: area, measure, each setup's value, the ratios; then where it tops out."""
    lines = []
    for a in report["areas"]:
        inputs = ", ".join(f"{k} {v}" for k, v in a["inputs"].items())
        lines.append(f"== {a['name']}  [{inputs}]")
        for r in a["rows"]:
            vals = "  ".join(f"{lab}={_fmt(v)}" for lab, v in r["values"].items())
            rat = "  ".join(
                f"{lab}: {_fmt(v)}×" if v is not None else f"{lab}: missing" for lab, v in r["ratios"].items()
            )
            lines.append(
                f"  {r['measure']} ({r['unit']}, {r['better']} is better): {vals}" + (f"  | {rat}" if rat else "")
            )
        if a["per_core"]:
            lines.append("  per core: " + "  ".join(f"{k}={_fmt(v)}" for k, v in a["per_core"].items()))
        lines += [f"  note: {n}" for n in a["notes"]]
        lines += [f"  tops out: {t}" for t in a["tops_out"]]
    if report["missing"]:
        lines.append(f"missing ({len(report['missing'])}): " + "; ".join(report["missing"]))
    return "\n".join(lines)


def run(results: Path = RESULTS) -> dict[str, Any]:
    """Build the report from ``results``, write ``results/scale.json``, print the table; returns the report."""
    report = build(results)
    results.mkdir(parents=True, exist_ok=True)
    (results / OUTPUT).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(render(report))
    return report


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS)
