"""Latency sampling shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Run ``fn`` once to warm up, then ``repeat`` times; p50, p95 and max in milliseconds."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
    }
