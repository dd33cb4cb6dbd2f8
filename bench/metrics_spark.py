"""Customer value metrics on DuckDB vs PySpark (local mode, through Ibis) on the same synthetic brand.

Reuses ``bench.metrics``: its generator writes the brand into a DuckDB warehouse, and its ``ibis`` child runs RFM,
AIPL and lifecycle to Arrow on DuckDB. Here a second child exports the warehouse to Parquet
(``siyu warehouse export``), opens Spark (``SIYU_WAREHOUSE=pyspark://local[2]``) and runs the same three reports
through ``siyu.services.metrics``: first call (cold: binding, Spark planning) and the median of ``warm_runs`` more.
The per-class / per-stage counts of both engines are compared (``match``).

Spark gets its driver memory from the warehouse URL (``pyspark://local[2]?spark.driver.memory=6g``, see
``siyu.stores.analytics_engine``) and hands results to Python as Arrow batches. ``make bench`` runs issue 10's
10 M orders (2.5 M customers) with one warm call (``SIYU_BENCH_SPARK_ORDERS`` / ``SIYU_BENCH_SPARK_WARM`` change
that; an estimated 7–10 minutes on 2 quiet cores, 40 on 2026-11-24's loaded ones);
``python -m bench.metrics_spark run ORDERS [warm_runs] [driver_memory]`` runs any size.
Peak RSS is sampled over the whole process tree of the Spark child (the Python driver, the JVM it starts, any
Python workers): per role, and the peak of their sum. The load average (``os.getloadavg``) before and after each
engine is recorded beside the times, since this machine is shared.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.metrics import SYNTH, SYNTH_AS_OF, _child, _peak_rss_mb, _summary

DEFAULT_ORDERS = int(os.environ.get("SIYU_BENCH_SPARK_ORDERS", "10000000"))
DEFAULT_WARM = int(os.environ.get("SIYU_BENCH_SPARK_WARM", "1"))
SPARK_MASTER = "local[2]"


def spark_url(driver_memory: str) -> str:
    """The ``SIYU_WAREHOUSE`` the Spark child uses: local mode on 2 cores with ``driver_memory`` of JVM heap."""
    return f"pyspark://{SPARK_MASTER}?spark.driver.memory={driver_memory}"


def default_driver_memory(orders: int) -> str:
    """2 GiB of Spark driver heap up to 2 M orders, 6 GiB beyond (10 M orders fail in the default 1 GiB)."""
    return "2g" if orders <= 2_000_000 else "6g"


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> dict[int, str]:
    """``root`` and its descendants (pid → role: driver, jvm, python-worker, other) from /proc."""
    parent: dict[int, int] = {}
    cmd: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            parent[int(d.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
            cmd[int(d.name)] = (d / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            continue
    out = {root: "driver"}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in out and pid not in out:
                exe = cmd.get(pid, "")
                out[pid] = "jvm" if exe.endswith("java") else "python-worker" if "python" in exe else "other"
                grew = True
    return out


class TreeRss:
    """Samples the RSS of this process and its descendants every ``interval`` seconds (a daemon thread): the peak
    of each role (VmHWM where the process is still alive at the end) and the peak of the sum."""

    def __init__(self, interval: float = 0.5) -> None:
        import threading

        self.interval = interval
        self.peak_kb: dict[str, int] = {}
        self.peak_sum_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample(hwm=True)
        self._stop.set()
        self._thread.join()

    def sample(self, hwm: bool = False) -> None:
        """One reading of the tree (``hwm``: each live process's own high-water mark instead of its RSS now)."""
        total = 0
        for pid, role in _tree(os.getpid()).items():
            kb = _rss_kb(pid, "VmHWM" if hwm else "VmRSS")
            total += kb
            self.peak_kb[role] = max(self.peak_kb.get(role, 0), kb)
        if not hwm:
            self.peak_sum_kb = max(self.peak_sum_kb, total)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def result(self) -> dict[str, float]:
        """Peak MB per role and of the sum (sampled; the sum is at least the largest role's peak)."""
        out = {f"{role}_peak_rss_mb": round(kb / 1024, 1) for role, kb in sorted(self.peak_kb.items())}
        out["tree_peak_rss_mb"] = round(max(self.peak_sum_kb, *self.peak_kb.values()) / 1024, 1)
        return out


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its live descendants (the JVM, workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(os.getpid()):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_spark(data_dir: Path, brand: str, as_of: date, warm_runs: int = 3, driver_memory: str = "2g") -> dict[str, Any]:
    """Export the warehouse to Parquet, open Spark and run RFM, AIPL and lifecycle to Arrow through it."""
    with TreeRss() as rss:
        out = _run_spark(data_dir, brand, as_of, warm_runs, driver_memory)
    out.update(rss.result())
    return out


def _run_spark(data_dir: Path, brand: str, as_of: date, warm_runs: int, driver_memory: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from siyu.analytics.aipl import aipl_stage
    from siyu.analytics.lifecycle import lifecycle_stage
    from siyu.analytics.rfm import rfm_customers
    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.metrics import backend, fetch_arrow, tables
    from siyu.services.warehouse_export import export_warehouse

    load_before = _load()
    ctx = Context.open(Settings(data_dir=data_dir, warehouse_url=spark_url(driver_memory)))
    t0 = time.perf_counter()
    rows = export_warehouse(ctx)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    session = backend(ctx)._session
    open_s = time.perf_counter() - t0
    driver_memory_set = session.sparkContext.getConf().get("spark.driver.memory")
    out: dict[str, pa.Table] = {}
    builders = (("rfm", rfm_customers), ("aipl", aipl_stage), ("lifecycle", lifecycle_stage))

    def call() -> dict[str, float]:
        secs = {}
        cpu0 = tree_cpu_seconds()
        t0 = time.perf_counter()
        t = tables(ctx, brand)
        secs["tables"] = time.perf_counter() - t0
        for name, build in builders:
            t1 = time.perf_counter()
            out[name] = fetch_arrow(ctx, build(t, as_of))
            secs[name] = time.perf_counter() - t1
        secs["total"] = time.perf_counter() - t0
        secs["cpu_s"] = tree_cpu_seconds() - cpu0  # driver + JVM: the figure a shared machine does not inflate
        return secs

    cold = call()
    warm = [call() for _ in range(warm_runs)]
    cpu_total = tree_cpu_seconds()
    ctx.close()  # stops the Spark session too

    def counts(tab: pa.Table, col: str) -> dict[str, int]:
        vc = pc.value_counts(tab[col]).to_pylist()
        return {str(x["values"]): int(x["counts"]) for x in vc}

    return {
        "spark_url": spark_url(driver_memory),
        "spark_driver_memory_in_effect": driver_memory_set,
        "load_before": load_before,
        "load_after": _load(),
        "cpu_seconds_total": round(cpu_total, 1),
        "export_seconds": round(export_s, 2),
        "exported_orders": rows.get("orders"),
        "spark_open_seconds": round(open_s, 2),
        "seconds": {k: round(v, 4) for k, v in cold.items()},
        "seconds_warm": _summary(warm) if warm else None,
        "warm_runs": warm_runs,
        "driver_peak_rss_mb": _peak_rss_mb(),
        "rfm_customers": out["rfm"].num_rows,
        "monetary": round(float(pc.sum(out["rfm"]["monetary"]).as_py() or 0.0), 2),
        "classes": counts(out["rfm"], "rfm_class"),
        "aipl": counts(out["aipl"], "stage"),
        "lifecycle": counts(out["lifecycle"], "stage"),
    }


def _spark_child(*args: str) -> dict[str, Any]:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.metrics_spark", *args], cwd=root, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.metrics_spark {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(
    orders: int = DEFAULT_ORDERS, warm_runs: int = DEFAULT_WARM, driver_memory: str | None = None
) -> dict[str, Any]:
    """Generate ``orders``, then DuckDB and Spark each in their own child process; times, ratios, match."""
    memory = driver_memory or default_driver_memory(orders)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "synth"
        gen = _child("generate", str(d), str(orders))
        duck_load = _load()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        duck = _child("ibis", str(d), SYNTH, SYNTH_AS_OF.isoformat(), str(warm_runs))
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the whole child (open, first call, warm calls): DuckDB's threads are in-process, so this is all of it
        duck["cpu_seconds_total"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)
        duck["load_before"], duck["load_after"] = duck_load, _load()
        spark = _spark_child("spark", str(d), SYNTH, SYNTH_AS_OF.isoformat(), str(warm_runs), memory)
    keys = ("rfm_customers", "classes", "aipl", "lifecycle")
    same = all(duck[k] == spark[k] for k in keys) and abs(duck["monetary"] - spark["monetary"]) <= 1e-6 * max(
        1.0, abs(duck["monetary"])
    )

    def ratio(key: str) -> float | None:
        if not duck.get(key) or not spark.get(key):
            return None
        return round(spark[key]["total"] / max(duck[key]["total"], 1e-9), 1)

    return {
        "machine_cores": os.cpu_count(),
        "machine_memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "orders": orders,
        "warm_runs": warm_runs,
        "spark_driver_memory": memory,
        "generated": gen,
        "duckdb": duck,
        "pyspark": spark,
        "spark_vs_duckdb": {"cold": ratio("seconds"), "warm": ratio("seconds_warm")},
        "match": same,
    }


def _main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "run"
    if cmd == "spark":
        warm = int(argv[4]) if len(argv) > 4 else 3
        out = run_spark(Path(argv[1]), argv[2], date.fromisoformat(argv[3]), warm, argv[5] if len(argv) > 5 else "2g")
    else:
        orders = int(argv[1]) if len(argv) > 1 else DEFAULT_ORDERS
        out = run(orders, int(argv[2]) if len(argv) > 2 else DEFAULT_WARM, argv[3] if len(argv) > 3 else None)
    print(json.dumps(out, ensure_ascii=False, default=str))


if __name__ == "__main__":
    _main(sys.argv[1:])
